import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ShieldError } from '@inference-shield/core';
import { Consumes, isHttpsDraining } from '@inference-shield/https';
import { Allow, Authenticated, mtls, oidc, Public } from '@inference-shield/identity';
import { ModelRegistry } from './model-registry.service.js';
import type { V2InferResponse, V2ModelMetadata } from './v2-protocol.interface.js';

/** SPIFFE IDs of the workloads allowed to call infer with their client certificate alone. */
export const INFER_WORKLOADS: readonly string[] = ['spiffe://shield.local/demo'];

/**
 * The Open Inference Protocol (KServe v2) REST routes: server health, model metadata and
 * readiness, and inference. Refusals are `ShieldError`s; the global `ShieldExceptionFilter`
 * turns them into `{ code, message }` with the catalogue's status.
 */
@Controller('v2')
export class InferenceController {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /** The process is up and answering. */
  @Public()
  @Get('health/live')
  live(): { live: true } {
    return { live: true };
  }

  /**
   * Every model has loaded and the server is not shutting down: 503 from the moment SIGTERM starts
   * the drain (`timeouts.drainDelayMs`), while the server still serves.
   */
  @Public()
  @Get('health/ready')
  ready(): { ready: true } {
    if (!this.registry.isReady() || isHttpsDraining(this.adapterHost.httpAdapter.getHttpServer())) {
      throw new ShieldError('ERR_NOT_READY');
    }
    return { ready: true };
  }

  /** Name, versions, platform, inputs and outputs of one model. */
  @Authenticated()
  @Get('models/:name')
  metadata(@Param('name') name: string): V2ModelMetadata {
    return this.registry.metadata(name);
  }

  /** 200 when the model can serve, 404 when unknown, 503 while shutting down. */
  @Authenticated()
  @Get('models/:name/ready')
  modelReady(@Param('name') name: string): { name: string; ready: true } {
    this.registry.assertModelReady(name);
    return { name, ready: true };
  }

  /**
   * Run the model on a v2 request body.
   *
   * A person or service with an access token carrying `models:infer`, or an allow-listed workload
   * presenting its certificate (no token needed: the TLS handshake proved who it is). JSON only:
   * any other body type gets `415 ERR_UNSUPPORTED_MEDIA_TYPE` before the validator sees it.
   */
  @Allow(oidc({ scopes: ['models:infer'] }), mtls({ spiffeIds: INFER_WORKLOADS }))
  @Consumes('application/json')
  @Post('models/:name/infer')
  @HttpCode(200)
  infer(@Param('name') name: string, @Body() body: unknown): Promise<V2InferResponse> {
    return this.registry.infer(name, body);
  }
}
