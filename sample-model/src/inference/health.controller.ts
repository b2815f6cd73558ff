import { Controller, Get, Inject, Optional } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import { HttpsHealthIndicator } from '@inference-shield/https/health';
import { Public } from '@inference-shield/identity';
import { IdentityHealthIndicator } from '@inference-shield/identity/health';
import { InjectUpstreamRegistry, type UpstreamRegistry } from '@inference-shield/upstream';
import { UpstreamHealthIndicator } from '@inference-shield/upstream/health';
import { ModelRegistry } from './model-registry.service.js';
import type { ResolvedSampleModelOptions } from './sample-model-options.interface.js';
import { SAMPLE_MODEL_OPTIONS } from './sample-model.constants.js';

/** Certificates this close to their end (days) are reported as a warning; past it, not ready. */
export const CERTIFICATE_WARN_DAYS = 14;

/**
 * The bound of one upstream probe: under the readiness probe's own timeout (2 s in
 * docs/k8s/sample-model.yaml), and only the first readiness call ever waits for a probe.
 */
export const UPSTREAM_PROBE_TIMEOUT_MS = 1500;

/**
 * Terminus health routes, for probes: `GET /health/live` (the process answers) and
 * `GET /health/ready` (models loaded, not draining, certificates valid). Details name states and
 * dates, never a credential. The KServe routes `/v2/health/*` answer the same questions in v2's shape.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly https: HttpsHealthIndicator,
    private readonly identity: IdentityHealthIndicator,
    private readonly upstreamHealth: UpstreamHealthIndicator,
    private readonly registry: ModelRegistry,
    @Inject(SAMPLE_MODEL_OPTIONS) private readonly options: ResolvedSampleModelOptions,
    @Optional() @InjectUpstreamRegistry() private readonly upstreams: UpstreamRegistry | null = null,
  ) {}

  /** Liveness: no dependency is checked, so a slow upstream never gets the process restarted. */
  @Public()
  @Get('live')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  /**
   * Readiness: 503 from the moment SIGTERM starts the drain, while a model is not loaded, once a
   * certificate has expired (ours, or one we use towards an upstream), or while an issuer's keys
   * are not loaded or stale. Each upstream's reachability (`upstream:<name>`: reachable, the
   * probe's status or the code of its failure, e.g. `ERR_UPSTREAM_CLIENT_CERT_REFUSED`) is
   * reported, and makes the sample not ready only with `upstreamReadiness: 'required'`.
   */
  @Public()
  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.https.draining(),
      () => {
        const models = this.indicators.check('models');
        return this.registry.isReady()
          ? models.up({ loaded: this.registry.modelNames() })
          : models.down({ loaded: this.registry.modelNames() });
      },
      () => this.https.certificates('tls', { warnDays: CERTIFICATE_WARN_DAYS }),
      // An issuer whose keys are past their staleness bound: its tokens are refused, so not ready.
      () => this.identity.keySets(),
      // Our client certificate and the CAs we trust towards each upstream.
      () => this.upstreamHealth.certificates('upstreamCertificates', { warnDays: CERTIFICATE_WARN_DAYS }),
      ...this.upstreamChecks(),
    ]);
  }

  private upstreamChecks(): HealthIndicatorFunction[] {
    const required = this.options.upstreamReadiness === 'required';
    return (this.upstreams?.names() ?? []).map(
      (name) => () => this.upstreamHealth.reachable(name, { required, timeoutMs: UPSTREAM_PROBE_TIMEOUT_MS }),
    );
  }
}
