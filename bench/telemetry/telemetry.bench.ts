/**
 * Micro-benchmark (issue #17 §1): what OpenTelemetry costs the guard's decision, per request.
 * Three apps with the same IdentityModule, called as guard-micro.bench.ts does (a reused token on
 * one keep-alive connection: the memo path, the cheapest decision, so the telemetry's share is
 * largest):
 *
 * - `baseline`: the decider's telemetry replaced by an empty object (no instrument call at all);
 * - `no SDK`: as shipped, no OpenTelemetry SDK registered (the API's no-op instruments);
 * - `SDK + Prometheus`: a MeterProvider with the Prometheus exporter as its reader (no server
 *   started) and a tracer provider recording every `shield.auth` span into a dropping exporter,
 *   registered before that app was created.
 *
 * The per-request cost is the difference of the mean times (µs per call).
 *
 *   npx vitest bench --run bench/telemetry/telemetry.bench.ts bench/telemetry/telemetry-sdk.bench.ts
 */
import { bench, describe } from 'vitest';
import { ctx, guardApps } from './guard-fixture.js';

const guards = guardApps(false);

describe('IdentityGuard.canActivate, reused token on one connection (memo)', () => {
  for (const name of ['baseline', 'no SDK']) {
    bench(name, () => {
      const guard = guards[name];
      if (!guard) throw new Error('not started');
      if (guard.canActivate(ctx(name)) !== true) throw new Error('the memo did not answer');
    });
  }
});
