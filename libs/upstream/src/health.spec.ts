import 'reflect-metadata';
import { HealthIndicatorService } from '@nestjs/terminus';
import { describe, expect, it } from 'vitest';
import { ShieldError } from '@inference-shield/core/internal';
import { UpstreamHealthIndicator, upstreamCertificateHealth } from './health.js';
import type { UpstreamRegistry } from './upstream.registry.js';
import type { UpstreamCertificateValidity } from './upstream.telemetry.js';

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2026-12-07T12:00:00Z');

function cert(
  role: UpstreamCertificateValidity['role'],
  days: number,
  file = `${role}.pem`,
  renewedBySource = false,
): UpstreamCertificateValidity {
  return { role, file, fingerprint: 'ab'.repeat(32), validTo: new Date(NOW + days * DAY), renewedBySource };
}

describe('upstreamCertificateHealth', () => {
  it.each<[string, number, number, boolean, 'warning' | 'expired' | undefined]>([
    ['both far from their end', 90, 365, true, undefined],
    ['the client certificate within warnDays', 5, 365, true, 'warning'],
    ['the CA within warnDays', 90, 13, true, 'warning'],
    ['the client certificate ended', -1, 365, false, 'expired'],
    ['the CA ended', 90, -0.01, false, 'expired'],
  ])('%s', (_name, clientDays, caDays, up, flag) => {
    const health = upstreamCertificateHealth(
      [{ upstream: 'llm', certificates: [cert('upstream_client', clientDays), cert('upstream_ca', caDays)] }],
      NOW,
      14,
    );
    expect(health.up).toBe(up);
    expect(health.details.items).toHaveLength(2);
    expect(health.details.warning !== undefined).toBe(flag === 'warning');
    expect(health.details.expired !== undefined).toBe(flag === 'expired');
  });

  it('reports upstream, kind, file and days, soonest end first; names what warns', () => {
    const health = upstreamCertificateHealth(
      [
        { upstream: 'llm', certificates: [cert('upstream_client', 30, '/certs/llm.pem')] },
        { upstream: 'embed', certificates: [cert('upstream_ca', 3, '/certs/ca.pem')] },
      ],
      NOW,
      14,
    );
    expect(health.details.items.map((i) => [i.upstream, i.kind, i.file, i.daysLeft])).toEqual([
      ['embed', 'ca', '/certs/ca.pem', 3],
      ['llm', 'client', '/certs/llm.pem', 30],
    ]);
    expect(health.details.warning).toBe(
      `upstream "embed" CA /certs/ca.pem expires in 3 day(s), at ${new Date(NOW + 3 * DAY).toISOString()}`,
    );
  });

  it.each<[string, number, boolean]>([
    ['an hour-long SVID from clientCertificateSource: no warning', 1 / 24, true],
    ['the same SVID past its end (its source stopped renewing it): down', -1 / 24, false],
  ])('%s', (_name, days, up) => {
    const health = upstreamCertificateHealth(
      [
        {
          upstream: 'llm',
          certificates: [cert('upstream_client', days, 'upstreams.llm.clientCertificate', true)],
        },
      ],
      NOW,
      14,
    );
    expect(health.up).toBe(up);
    expect(health.details.warning).toBeUndefined();
    expect(health.details.items[0]).toMatchObject({ kind: 'client', renewedBySource: true });
  });

  it('warnDays 0: only an ended certificate counts', () => {
    const health = upstreamCertificateHealth(
      [{ upstream: 'llm', certificates: [cert('upstream_client', 0.5)] }],
      NOW,
      0,
    );
    expect(health).toMatchObject({ up: true, details: { items: [{ daysLeft: 0 }] } });
    expect(health.details.warning).toBeUndefined();
  });
});

/** A registry of one upstream whose probes are answered by hand (a unit test of the cache only). */
function fakeRegistry() {
  const pending: { resolve(status: number): void; reject(err: unknown): void; signal?: AbortSignal }[] = [];
  const client = {
    probe: (signal?: AbortSignal) =>
      new Promise<number>((resolve, reject) => {
        pending.push({ resolve, reject, ...(signal ? { signal } : {}) });
        signal?.addEventListener('abort', () => reject(new ShieldError('ERR_UPSTREAM_ABORTED')));
      }),
    certificates: () => [cert('upstream_client', -2)],
  };
  const registry = { client: () => client, names: () => ['llm'] } as unknown as UpstreamRegistry;
  return { registry, pending };
}

describe('UpstreamHealthIndicator', () => {
  it('the first call waits for the probe; after cacheMs one new probe starts and the previous result answers meanwhile', async () => {
    const { registry, pending } = fakeRegistry();
    const health = new UpstreamHealthIndicator(new HealthIndicatorService(), registry);
    const first = health.reachable('llm', { cacheMs: 1000 });
    expect(pending).toHaveLength(1);
    pending[0]?.reject(new ShieldError('ERR_UPSTREAM_CLIENT_CERT_REFUSED'));
    expect((await first)['upstream:llm']).toMatchObject({
      status: 'up',
      reachable: false,
      code: 'ERR_UPSTREAM_CLIENT_CERT_REFUSED',
    });
    await new Promise((r) => setTimeout(r, 1050));
    // Stale: answered at once with the previous result, one probe started for a burst of calls.
    const burst = await Promise.all([1, 2, 3].map(() => health.reachable('llm', { cacheMs: 1000 })));
    expect(burst.map((r) => r['upstream:llm']?.code)).toEqual(
      Array(3).fill('ERR_UPSTREAM_CLIENT_CERT_REFUSED'),
    );
    expect(pending).toHaveLength(2);
    pending[1]?.resolve(401);
    await new Promise((r) => setImmediate(r));
    expect((await health.reachable('llm', { cacheMs: 1000 }))['upstream:llm']).toMatchObject({
      status: 'up',
      reachable: true,
      httpStatus: 401,
    });
    expect(pending).toHaveLength(2);
  }, 10_000);

  it('a probe cut by its own bound is ERR_UPSTREAM_TIMEOUT, and down when required', async () => {
    const { registry } = fakeRegistry();
    const health = new UpstreamHealthIndicator(new HealthIndicatorService(), registry);
    const result = await health.reachable('llm', { timeoutMs: 100, required: true });
    expect(result['upstream:llm']).toMatchObject({
      status: 'down',
      reachable: false,
      code: 'ERR_UPSTREAM_TIMEOUT',
    });
  });

  it('certificates: down with the expired client certificate named', () => {
    const { registry } = fakeRegistry();
    const health = new UpstreamHealthIndicator(new HealthIndicatorService(), registry);
    const result = health.certificates();
    expect(result.upstreamCertificates).toMatchObject({
      status: 'down',
      items: [{ upstream: 'llm', kind: 'client' }],
    });
    expect(String(result.upstreamCertificates.expired)).toMatch(
      /^upstream "llm" client certificate upstream_client\.pem expired at /,
    );
  });

  it('without UpstreamModule: certificates up with no items; reachable names the problem', async () => {
    const health = new UpstreamHealthIndicator(new HealthIndicatorService(), null);
    expect(health.certificates('c')).toEqual({ c: { status: 'up', items: [] } });
    await expect(health.reachable('llm')).rejects.toThrow(/UpstreamModule is not imported/);
  });

  it.each([
    [{ warnDays: 366 }, /warnDays/],
    [{ warnDays: 1.5 }, /warnDays/],
    [{ days: 3 }, /unknown option "days"/],
  ])('certificates refuses bad options: %j', (options, message) => {
    const health = new UpstreamHealthIndicator(new HealthIndicatorService(), null);
    expect(() => health.certificates('c', options as never)).toThrow(message);
  });
});
