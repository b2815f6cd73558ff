/**
 * #17 §2: UpstreamHealthIndicator against the real stand-in LLM (it requires a client certificate
 * of the test CA): reachable with our certificate; refused without one, reported, and down only
 * when the upstream is `required`; probes are cached, not repeated per health call.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HealthIndicatorService } from '@nestjs/terminus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstreamRegistry, type UpstreamRegistry } from '@inference-shield/upstream';
import { UpstreamHealthIndicator } from '@inference-shield/upstream/health';
import { createLlmStandin, type LlmStandin } from '../../apps/llm-standin/src/llm-standin.server.js';
import { testPki } from './upstream-fixtures.js';

const API_KEY = 'sk-standin-test-key-0002';
let pki: Awaited<ReturnType<typeof testPki>>;
let keyFile: string;
let standin: LlmStandin;
const registries: UpstreamRegistry[] = [];

beforeAll(async () => {
  pki = await testPki();
  keyFile = join(pki.dir, 'llm-api-key');
  writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
  standin = await createLlmStandin({
    port: 0,
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
    crl: pki.ca.crl,
    apiKeys: [API_KEY],
    recordRequests: true,
  });
});

afterAll(async () => {
  await Promise.all(registries.map((r) => r.close()));
  await standin?.close();
  pki?.cleanup();
});

async function indicator(withClientCert: boolean): Promise<UpstreamHealthIndicator> {
  const registry = await createUpstreamRegistry({
    upstreams: {
      llm: {
        baseUrl: `${standin.url}/v1`,
        ca: { file: pki.ca.cert },
        ...(withClientCert
          ? { clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false } }
          : {}),
        apiKey: { file: keyFile },
      },
    },
  });
  registries.push(registry);
  return new UpstreamHealthIndicator(new HealthIndicatorService(), registry);
}

describe('UpstreamHealthIndicator', () => {
  it('reachable with our client certificate: up, with the HTTP status of the probe', async () => {
    const health = await indicator(true);
    const result = await health.reachable('llm');
    expect(result['upstream:llm']).toMatchObject({ status: 'up', reachable: true });
    expect(typeof result['upstream:llm']?.httpStatus).toBe('number');
  });

  it('our certificate refused: reported with its code, up unless required, down when required', async () => {
    const health = await indicator(false);
    const reported = await health.reachable('llm');
    expect(reported['upstream:llm']).toMatchObject({ status: 'up', reachable: false });
    expect(reported['upstream:llm']?.code).toMatch(/^ERR_UPSTREAM_/);
    const required = await health.reachable('llm', { required: true });
    expect(required['upstream:llm']).toMatchObject({ status: 'down', reachable: false });
  });

  it('reuses one probe for cacheMs: a burst of health calls is one upstream request', async () => {
    const health = await indicator(true);
    const before = standin.requests.length;
    await Promise.all(Array.from({ length: 10 }, () => health.reachable('llm')));
    await health.reachable('llm');
    expect(standin.requests.length - before).toBe(1);
    // The base URL, without the credential: a probe never sends (or spends) one.
    expect(standin.requests.at(-1)).toMatchObject({ method: 'HEAD', path: '/v1/' });
    expect(standin.requests.at(-1)?.headers.authorization).toBeUndefined();
  });

  it('certificates: a file certificate within warnDays warns, naming the file; the CA is listed', async () => {
    const soon = await pki.ca.authority.issueClient({
      spiffeId: 'spiffe://shield.local/soon',
      notAfter: new Date(Date.now() + 5 * 24 * 3600 * 1000),
    });
    const cert = join(pki.dir, 'soon.pem');
    const key = join(pki.dir, 'soon-key.pem');
    writeFileSync(cert, soon.certPem);
    writeFileSync(key, soon.keyPem, { mode: 0o600 });
    const registry = await createUpstreamRegistry({
      upstreams: {
        llm: {
          baseUrl: `${standin.url}/v1`,
          ca: { file: pki.ca.cert },
          clientCertificate: { cert, key, watch: false },
          apiKey: { file: keyFile },
        },
      },
    });
    registries.push(registry);
    const result = new UpstreamHealthIndicator(new HealthIndicatorService(), registry).certificates();
    const details = result.upstreamCertificates;
    expect(details).toMatchObject({ status: 'up' });
    expect(details.items).toEqual([
      expect.objectContaining({
        kind: 'client',
        upstream: 'llm',
        file: cert,
        fingerprint: soon.fingerprint256,
        daysLeft: 4,
      }),
      expect.objectContaining({ kind: 'ca', upstream: 'llm', file: pki.ca.cert }),
    ]);
    expect(details.warning).toMatch(
      new RegExp(`^upstream "llm" client certificate ${cert} expires in 4 day\\(s\\)`),
    );
  });

  it('certificates: an hour-long certificate from clientCertificateSource is no warning; probes use it', async () => {
    const svid = await pki.ca.authority.issueClient({
      spiffeId: 'spiffe://shield.local/svid',
      notAfter: new Date(Date.now() + 3600 * 1000),
    });
    const registry = await createUpstreamRegistry({
      upstreams: {
        llm: {
          baseUrl: `${standin.url}/v1`,
          ca: { file: pki.ca.cert },
          clientCertificateSource: {
            current: () => ({ cert: svid.certPem, key: svid.keyPem }),
            subscribe: () => () => undefined,
          },
          apiKey: { file: keyFile },
        },
      },
    });
    registries.push(registry);
    const health = new UpstreamHealthIndicator(new HealthIndicatorService(), registry);
    const details = health.certificates().upstreamCertificates;
    expect(details).toMatchObject({ status: 'up' });
    expect(details.warning).toBeUndefined();
    expect(details.items).toContainEqual(
      expect.objectContaining({
        kind: 'client',
        fingerprint: svid.fingerprint256,
        daysLeft: 0,
        renewedBySource: true,
      }),
    );
    expect((await health.reachable('llm'))['upstream:llm']).toMatchObject({ status: 'up', reachable: true });
  });

  it.each([
    [{ timeoutMs: 10 }, /timeoutMs/],
    [{ cacheMs: 0 }, /cacheMs/],
    [{ required: 'yes' }, /required/],
    [{ retries: 1 }, /unknown option "retries"/],
  ])('refuses bad options: %j', async (options, message) => {
    const health = await indicator(true);
    await expect(health.reachable('llm', options as never)).rejects.toThrow(message);
  });
});
