/** The `SDK + Prometheus` half of telemetry.bench.ts (its own worker: see guard-fixture.ts). */
import { bench, describe } from 'vitest';
import { ctx, guardApps } from './guard-fixture.js';

const guards = guardApps(true);

describe('IdentityGuard.canActivate, reused token on one connection (memo)', () => {
  for (const name of ['baseline', 'SDK + Prometheus']) {
    bench(name, () => {
      const guard = guards[name];
      if (!guard) throw new Error('not started');
      if (guard.canActivate(ctx(name)) !== true) throw new Error('the memo did not answer');
    });
  }
});
