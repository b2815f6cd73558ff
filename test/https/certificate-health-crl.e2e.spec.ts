/**
 * CRLs in the certificate health indicator and in the `shield.certificate.expiry` metric (role
 * `crl`), end to end: a real app with `mtls.crl` from the dev PKI, terminus readiness over TLS,
 * and a real OpenTelemetry SDK (an in-memory metric reader, registered before any app is created,
 * as docs/telemetry.md says). A CRL near its `nextUpdate` is a warning; one past it is 503, the
 * moment OpenSSL starts refusing the client certificates of its CA (the app's own handshake is
 * asked); a fresh CRL, reloaded, brings both back.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metrics, type Attributes } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { CrlHealthAppModule } from './fixtures/crl-health.app.js';
import { startApp, testPki, type TestApp } from '../support/harness.js';
import type { TestPki } from '@inference-shield/dev-pki';

/** A metric reader the test collects from on demand. */
class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

const reader = new TestReader();
// Registered before any app exists: the API's meters have no proxy (see docs/telemetry.md).
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const HOUR = 60 * 60 * 1000;

interface Item {
  kind: string;
  name: string;
  fingerprint?: string;
  until: string;
  daysLeft: number;
}
interface Indicator {
  status: string;
  warning?: string;
  expired?: string;
  items?: Item[];
}

/** SHA-256 of a PEM CRL's DER, as the metric and the indicator report it. */
function fingerprintOf(crlPem: string): string {
  const der = Buffer.from(crlPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return createHash('sha256').update(der).digest('hex');
}

/** A CRL of the test CA ending at `nextUpdate`, written to `name` in the PKI folder. */
async function writeCrl(
  pki: TestPki,
  name: string,
  nextUpdate: Date,
): Promise<{ path: string; pem: string }> {
  const pem = await pki.ca.authority.crlPem({ nextUpdate });
  const path = join(pki.dir, name);
  writeFileSync(path, pem);
  return { path, pem };
}

function start(pki: TestPki, crl: string): Promise<TestApp> {
  return startApp(CrlHealthAppModule, {
    pki,
    mtls: { mode: 'optional', ca: { file: pki.ca.cert }, crl },
    reload: { watch: false },
  });
}

/**
 * The `shield.certificate.expiry` points now: seconds left, by role, file and fingerprint. The SDK
 * keeps the last point of an attribute set it no longer sees (an earlier test's app, a CRL since
 * replaced), so tests pick their points by file or fingerprint.
 */
async function expiries(): Promise<{ attributes: Attributes; value: number }[]> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const metric = resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === 'shield.certificate.expiry');
  return (metric?.dataPoints ?? []) as { attributes: Attributes; value: number }[];
}

/** The CRL points of one CRL file. */
async function crlPoints(file: string): Promise<{ attributes: Attributes; value: number }[]> {
  return (await expiries()).filter(
    (p) =>
      p.attributes['shield.certificate.role'] === 'crl' && p.attributes['shield.certificate.file'] === file,
  );
}

function tlsOf(body: Record<string, unknown>): Indicator | undefined {
  return (body.details as Record<string, Indicator> | undefined)?.tls;
}

describe('CRLs in the certificate health indicator and the expiry metric', () => {
  it('a CRL 30 days from its nextUpdate: up, no warning, reported as an item and observed as role crl', async () => {
    const pki = await testPki();
    const app = await start(pki, pki.ca.crl);
    try {
      const res = await app.call('/health/ready');
      expect(res.status).toBe(200);
      const tls = tlsOf(res.body);
      expect(tls?.status).toBe('up');
      expect(tls?.warning).toBeUndefined();
      const crl = tls?.items?.find((i) => i.kind === 'crl');
      expect(crl).toMatchObject({ name: 'ca.crl.pem', fingerprint: fingerprintOf(pki.ca.crlPem) });
      expect(crl?.daysLeft).toBeGreaterThanOrEqual(29);
      expect(tls?.items?.map((i) => i.kind).sort()).toEqual(['clientCa', 'crl', 'server']);

      const points = await expiries();
      const roles = points.map((p) => p.attributes['shield.certificate.role']);
      expect(roles).toEqual(expect.arrayContaining(['server', 'client_ca', 'crl']));
      const observed = await crlPoints(pki.ca.crl);
      expect(observed).toHaveLength(1);
      expect(observed[0]?.attributes).toEqual({
        'shield.certificate.role': 'crl',
        'shield.certificate.file': pki.ca.crl,
        'shield.certificate.fingerprint': fingerprintOf(pki.ca.crlPem),
      });
      // Seconds to nextUpdate: 30 days (the dev PKI's default), less the seconds this test took.
      expect(observed[0]?.value).toBeGreaterThan(29 * 24 * 3600);
      expect(observed[0]?.value).toBeLessThanOrEqual(30 * 24 * 3600);
    } finally {
      await app.close();
    }
  });

  it('a CRL within 24 hours of its nextUpdate: 200 with a warning naming it; the metric counts down to it', async () => {
    const pki = await testPki();
    const nextUpdate = new Date(Math.floor((Date.now() + 2 * HOUR) / 1000) * 1000);
    const near = await writeCrl(pki, 'near.crl.pem', nextUpdate);
    const app = await start(pki, near.path);
    try {
      const res = await app.call('/health/ready');
      expect(res.status).toBe(200);
      const tls = tlsOf(res.body);
      expect(tls?.status).toBe('up');
      expect(tls?.warning).toBe(
        `CRL near.crl.pem (sha256 ${fingerprintOf(near.pem).slice(0, 16)}) reaches its nextUpdate in 1 hour(s), at ${nextUpdate.toISOString()}`,
      );
      // Soonest first; public facts only.
      expect(tls?.items?.[0]).toMatchObject({ kind: 'crl', until: nextUpdate.toISOString(), daysLeft: 0 });
      expect(res.text).not.toMatch(/BEGIN|PRIVATE|\/tmp\//);

      const crl = await crlPoints(near.path);
      expect(crl.map((p) => p.attributes['shield.certificate.fingerprint'])).toEqual([
        fingerprintOf(near.pem),
      ]);
      expect(crl[0]?.value).toBeGreaterThan(0);
      expect(crl[0]?.value).toBeLessThanOrEqual(2 * 3600);
    } finally {
      await app.close();
    }
  });

  it('a CRL past its nextUpdate: 503, as OpenSSL refuses the client certificates of its CA; a fresh CRL restores both', async () => {
    const pki = await testPki();
    const client = { certPem: pki.client.certPem, keyPem: pki.client.keyPem };
    const app = await start(
      pki,
      (await writeCrl(pki, 'ca-live.crl.pem', new Date(Date.now() + 30 * 24 * HOUR))).path,
    );
    try {
      // A CRL must be current to load (an expired one is refused, at start and on reload): this
      // one is reloaded in and passes its nextUpdate a few seconds later.
      const nextUpdate = new Date(Math.floor(Date.now() / 1000) * 1000 + 5000);
      const stale = await writeCrl(pki, 'ca-live.crl.pem', nextUpdate);
      expect(app.https.reload()).toBe(true);
      // Before: up, and the client certificate verifies.
      const before = await app.call('/health/ready');
      expect(before.status).toBe(200);
      expect(tlsOf(before.body)?.warning).toMatch(
        /^CRL ca-live\.crl\.pem .* reaches its nextUpdate in 0 hour/,
      );
      expect((await app.call('/peer', { client })).body).toEqual({ verified: true, error: null });

      // Wait (bounded: 150 × 100 ms) for the indicator to turn down once nextUpdate has passed.
      let res = before;
      for (let i = 0; i < 150 && res.status === 200; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        res = await app.call('/health/ready');
      }
      expect(res.status).toBe(503);
      const tls = (res.body.error as Record<string, Indicator>).tls;
      expect(tls?.status).toBe('down');
      expect(tls?.expired).toBe(
        `CRL ca-live.crl.pem (sha256 ${fingerprintOf(stale.pem).slice(0, 16)}) passed its nextUpdate at ${nextUpdate.toISOString()}: every client certificate of its CA is refused`,
      );
      // The TLS layer agrees: the same client certificate no longer verifies, for that reason.
      expect((await app.call('/peer', { client })).body).toEqual({
        verified: false,
        error: 'CRL_HAS_EXPIRED',
      });
      // The metric shows it past its end.
      // (The 30-day CRL it replaced keeps its last point: the SDK does not drop it.)
      const crl = (await crlPoints(stale.path)).filter(
        (p) => p.attributes['shield.certificate.fingerprint'] === fingerprintOf(stale.pem),
      );
      expect(crl).toHaveLength(1);
      expect(crl[0]?.value).toBeLessThanOrEqual(0);

      // The operator's fix: a fresh CRL in place of the stale one, reloaded.
      const fresh = await pki.ca.authority.crlPem();
      writeFileSync(stale.path, fresh);
      expect(app.https.reload()).toBe(true);
      const after = await app.call('/health/ready');
      expect(after.status).toBe(200);
      expect(tlsOf(after.body)?.warning).toBeUndefined();
      expect((await app.call('/peer', { client })).body).toEqual({ verified: true, error: null });
      const observed = (await crlPoints(stale.path)).find(
        (p) => p.attributes['shield.certificate.fingerprint'] === fingerprintOf(fresh),
      );
      expect(observed?.value).toBeGreaterThan(29 * 24 * 3600);
    } finally {
      await app.close();
    }
  });
});
