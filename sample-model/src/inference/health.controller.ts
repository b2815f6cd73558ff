import { Controller, Get } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
} from '@nestjs/terminus';
import { HttpsHealthIndicator } from '@inference-shield/https/health';
import { Public } from '@inference-shield/identity';
import { IdentityHealthIndicator } from '@inference-shield/identity/health';
import { ModelRegistry } from './model-registry.service.js';

/** Certificates this close to their end (days) are reported as a warning; past it, not ready. */
export const CERTIFICATE_WARN_DAYS = 14;

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
    private readonly registry: ModelRegistry,
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
   * certificate has expired, or while an issuer's keys are not loaded or stale.
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
    ]);
  }
}
