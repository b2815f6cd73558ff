/**
 * The apps of the telemetry benches (see telemetry.bench.ts): a baseline guard whose decider has
 * no telemetry at all, and the measured guard, with or without an SDK registered before it.
 * Two bench files, so that each runs in its own worker: the API's tracer is a proxy, and an SDK
 * registered later would reach a "no SDK" app too.
 */
import 'reflect-metadata';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Controller, Get, Module, type ExecutionContext, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { IdentityModule, RequireScopes } from '@inference-shield/identity';
// What this bench measures is the guard itself, called directly: an internal class, on purpose.
// eslint-disable-next-line no-restricted-imports -- the guard and decider under measurement
import { IdentityDecider, IdentityGuard } from '@inference-shield/identity/internal';
import { exportJWK } from 'jose';
import { afterAll, beforeAll } from 'vitest';

const ISSUER = 'https://idp.bench.local';

@Controller('m')
class MicroController {
  @Get() @RequireScopes('models:infer') infer() {
    return 1;
  }
}

/** Spans are recorded (attributes set, ended), then dropped: the SDK's cost without export I/O. */
const dropSpans: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: () => Promise.resolve(),
};

let token = '';
const guards: Record<string, IdentityGuard> = {};
const apps: INestApplicationContext[] = [];
const prometheus = new PrometheusExporter({ preventServerStart: true });

async function start(name: string, jwk: object): Promise<void> {
  @Module({
    imports: [
      IdentityModule.forRoot({
        oidc: { issuers: [{ issuer: ISSUER, audience: 'x', jwks: { keys: [jwk] }, algorithms: ['ES256'] }] },
        audit: { sink: { record: () => undefined } },
      }),
    ],
    controllers: [MicroController],
  })
  class M {}
  const app = await NestFactory.createApplicationContext(M, { logger: false });
  apps.push(app);
  const guard = app.get(IdentityGuard);
  guards[name] = guard;
  if (name === 'baseline') {
    // No instrument call at all: what the decision cost before telemetry.
    Object.assign(app.get(IdentityDecider), { telemetry: { decided: () => undefined } });
  }
  // The connection's first request takes the full path and fills the memo.
  await guard.canActivate(ctx(name));
}

/** Starts the baseline app and the measured one (with the SDK registered first when `withSdk`). */
export function guardApps(withSdk: boolean): Record<string, IdentityGuard> {
  const measured = withSdk ? 'SDK + Prometheus' : 'no SDK';
  beforeAll(async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'm', alg: 'ES256' };
    const now = Math.floor(Date.now() / 1000);
    const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
    const input = `${b64(JSON.stringify({ alg: 'ES256', kid: 'm' }))}.${b64(
      JSON.stringify({ iss: ISSUER, aud: 'x', sub: 's', iat: now, exp: now + 3600, scope: 'models:infer' }),
    )}`;
    token = `${input}.${b64(cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`;
    await start('baseline', jwk);
    if (withSdk) {
      // Registered before the measured app is created, as an application does.
      metrics.setGlobalMeterProvider(new MeterProvider({ readers: [prometheus] }));
      trace.setGlobalTracerProvider(
        new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(dropSpans)] }),
      );
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    }
    await start(measured, jwk);
  });

  afterAll(async () => {
    for (const socket of connections.values()) socket.destroy();
    for (const app of apps) await app.close();
    await prometheus.shutdown();
  });
  return guards;
}

// One never-connected TLS socket per app, standing for one keep-alive connection (the memo).
const connections = new Map<string, TLSSocket>();
const requests = new Map<string, object>();

export function ctx(name: string): ExecutionContext {
  let request = requests.get(name);
  if (request === undefined) {
    const socket = new TLSSocket(new Socket());
    connections.set(name, socket);
    request = { headers: { authorization: `Bearer ${token}` }, socket };
    requests.set(name, request);
  }
  const r = request;
  return {
    getType: () => 'http',
    getClass: () => MicroController,
    getHandler: () => MicroController.prototype.infer,
    getArgByIndex: () => r,
    switchToHttp: () => ({ getRequest: () => r }),
  } as unknown as ExecutionContext;
}
