/**
 * #17 §2 on the sample: `/health/ready` reports its upstream, the hosted LLM, and the certificates
 * it uses towards it. The real sample (AppModule.forConfig from its environment, behind the real
 * bootstrap), the real dev IdP, the stand-in LLM (mTLS, keyless: it exchanges our client
 * certificate for a token) and, for an LLM front end that refuses our certificate with a TLS alert,
 * a real `openssl s_server` verifying client certificates inside the handshake.
 *
 * - reachable: reported up with the probe's status; the probe asks for no token and sends none;
 * - our certificate refused: `ERR_UPSTREAM_CLIENT_CERT_REFUSED` in the details, still ready by
 *   default, not ready with SHIELD_LLM_READINESS=required;
 * - our LLM client certificate within 14 days of its end: 200 with a warning naming it; past its
 *   end (it ended while the sample ran): 503.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { startDevIdp, type DevIdp } from '../../apps/dev-idp/src/index.js';
import { createLlmStandin, type LlmStandin } from '../../apps/llm-standin/src/llm-standin.server.js';
import { AppModule } from '../../sample-model/src/app/app.module.js';
import { loadSampleConfig } from '../../sample-model/src/app/sample-config.js';
import { startApp, type TestApp } from '../support/harness.js';

const SAMPLE_AUDIENCE = 'https://sample.readiness.test';
const DAY = 24 * 60 * 60 * 1000;

const root = mkdtempSync(join(tmpdir(), 'shield-readiness-'));
let pki: TestPki;
let idp: DevIdp;
let standin: LlmStandin;
const apps: TestApp[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  const idpPki = join(root, 'idp-pki');
  mkdirSync(idpPki, { mode: 0o700 });
  for (const [name, pem] of [
    ['ca.pem', pki.ca.certPem],
    ['localhost.pem', pki.server.certPem],
    ['localhost-key.pem', pki.server.keyPem],
  ] as const) {
    writeFileSync(join(idpPki, name), pem, { mode: 0o600 });
  }
  idp = await startDevIdp({
    port: 0,
    pkiDir: idpPki,
    keysFile: join(root, 'idp', 'jwks.json'),
    audience: SAMPLE_AUDIENCE,
  });
  // The hosted LLM: client certificates of the test CA, tokens only from its own token endpoint
  // (the certificate exchange the sample does by default).
  standin = await createLlmStandin({
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
    port: 0,
    tokenEndpoint: {},
    requireIssuedTokens: true,
    recordRequests: true,
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  for (const child of children) child.kill('SIGKILL');
  await standin?.close();
  await idp?.close();
  rmSync(root, { recursive: true, force: true });
});

/** The sample from its environment, as `npm start` builds it, on the harness's bootstrap. */
async function startSample(env: Record<string, string>): Promise<TestApp> {
  const config = loadSampleConfig({
    SHIELD_PKI_DIR: pki.dir,
    SHIELD_OIDC_ISSUER: idp.issuer,
    SHIELD_OIDC_AUDIENCE: SAMPLE_AUDIENCE,
    SHIELD_OIDC_CA: pki.ca.cert,
    SHIELD_LLM_URL: `${standin.url}/v1`,
    SHIELD_LLM_CA: pki.ca.cert,
    SHIELD_LLM_CLIENT_CERT: pki.client.cert,
    SHIELD_LLM_CLIENT_KEY: pki.client.key,
    ...env,
  });
  expect(config.llm.apiKeyFile).toBeUndefined();
  const app = await startApp(AppModule.forConfig(config), { pki, mtls: 'optional' });
  apps.push(app);
  return app;
}

type Ready = {
  status: number;
  body: {
    status?: string;
    info?: Record<string, Record<string, unknown>>;
    error?: Record<string, Record<string, unknown>>;
    details?: Record<string, Record<string, unknown>>;
  };
};

async function ready(app: TestApp): Promise<Ready> {
  const res = await app.call('/health/ready');
  return { status: res.status, body: res.body as Ready['body'] };
}

/** A client certificate of the test CA ending at `notAfter`, written as files. */
async function clientCertificate(name: string, notAfter: Date): Promise<{ cert: string; key: string }> {
  const issued = await pki.ca.authority.issueClient({
    spiffeId: 'spiffe://shield.local/sample-model',
    commonName: name,
    notBefore: new Date(Date.now() - 60_000),
    notAfter,
  });
  const cert = join(root, `${name}.pem`);
  const key = join(root, `${name}-key.pem`);
  writeFileSync(cert, issued.certPem);
  writeFileSync(key, issued.keyPem, { mode: 0o600 });
  return { cert, key };
}

/**
 * `openssl s_server` requiring a client certificate of another CA, checked inside the handshake
 * (`-verify_return_error`): our certificate is refused with a TLS alert, as the mTLS front ends of
 * hosted LLMs (nginx, Envoy, cloud load balancers) send.
 */
async function refusingFrontEnd(): Promise<string> {
  const child = spawn(
    'openssl',
    [
      's_server',
      '-accept',
      '0',
      '-cert',
      pki.server.cert,
      '-key',
      pki.server.key,
      '-CAfile',
      pki.otherCa.ca.cert,
      '-Verify',
      '3',
      '-verify_return_error',
      '-www',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`openssl s_server did not start: ${out}`)), 10_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /ACCEPT .*:(\d+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`openssl s_server exited with ${code}: ${out}`));
    });
  });
  return `https://localhost:${port}/v1`;
}

describe('the sample readiness and its hosted LLM', () => {
  it('reachable: up with the probe status; the probe fetched no token and sent none', async () => {
    const app = await startSample({});
    const tokenRequests = standin.tokenEndpoint?.stats.tokenRequests;
    const seen = standin.requests.length;
    const res = await ready(app);
    expect(res.status).toBe(200);
    expect(res.body.info?.['upstream:llm']).toMatchObject({ status: 'up', reachable: true });
    expect(typeof res.body.info?.['upstream:llm']?.['httpStatus']).toBe('number');
    const probes = standin.requests.slice(seen);
    expect(probes).toHaveLength(1);
    expect(probes[0]).toMatchObject({ method: 'HEAD', path: '/v1/' });
    expect(probes[0]?.headers.authorization).toBeUndefined();
    expect(standin.tokenEndpoint?.stats.tokenRequests).toBe(tokenRequests);
    // Our certificate and the LLM's CA, from their files, well within their validity.
    const certs = res.body.info?.['upstreamCertificates'];
    expect(certs).toMatchObject({ status: 'up' });
    expect(certs?.['warning']).toBeUndefined();
    expect(certs?.['items']).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'client', upstream: 'llm', file: pki.client.cert }),
        expect.objectContaining({ kind: 'ca', upstream: 'llm', file: pki.ca.cert }),
      ]),
    );
    // A second readiness call within the cache period: no second probe.
    expect((await ready(app)).status).toBe(200);
    expect(standin.requests.length - seen).toBe(1);
  });

  it('our certificate refused by the LLM: reported as ERR_UPSTREAM_CLIENT_CERT_REFUSED, still ready', async () => {
    const app = await startSample({ SHIELD_LLM_URL: await refusingFrontEnd() });
    const res = await ready(app);
    expect(res.status).toBe(200);
    expect(res.body.info?.['upstream:llm']).toMatchObject({
      status: 'up',
      reachable: false,
      code: 'ERR_UPSTREAM_CLIENT_CERT_REFUSED',
    });
  });

  it('SHIELD_LLM_READINESS=required: the same refusal makes the sample not ready', async () => {
    const app = await startSample({
      SHIELD_LLM_URL: await refusingFrontEnd(),
      SHIELD_LLM_READINESS: 'required',
    });
    const res = await ready(app);
    expect(res.status).toBe(503);
    expect(res.body.error?.['upstream:llm']).toMatchObject({
      status: 'down',
      reachable: false,
      code: 'ERR_UPSTREAM_CLIENT_CERT_REFUSED',
    });
    // The rest still reports up: only the LLM is the reason.
    expect(Object.keys(res.body.error ?? {})).toEqual(['upstream:llm']);
  });

  it.each(['yes', 'REQUIRED'])('SHIELD_LLM_READINESS=%s stops the start, naming the variable', (value) => {
    expect(() => loadSampleConfig({ SHIELD_LLM_READINESS: value })).toThrow(/SHIELD_LLM_READINESS/);
  });

  it('our LLM client certificate ends within 14 days: 200 with a warning naming it', async () => {
    const soon = await clientCertificate('llm-client-soon', new Date(Date.now() + 5 * DAY));
    const app = await startSample({ SHIELD_LLM_CLIENT_CERT: soon.cert, SHIELD_LLM_CLIENT_KEY: soon.key });
    const res = await ready(app);
    expect(res.status).toBe(200);
    const certs = res.body.info?.['upstreamCertificates'];
    expect(certs).toMatchObject({ status: 'up' });
    expect(certs?.['items']).toContainEqual(
      expect.objectContaining({ kind: 'client', file: soon.cert, daysLeft: 4 }),
    );
    expect(String(certs?.['warning'])).toMatch(
      new RegExp(
        `^upstream "llm" client certificate ${soon.cert.replace(/[.]/g, '\\.')} expires in 4 day\\(s\\)`,
      ),
    );
    // Still reachable with it.
    expect(res.body.info?.['upstream:llm']).toMatchObject({ reachable: true });
  });

  it('our LLM client certificate ended while the sample ran: 503, the certificate named', async () => {
    const brief = await clientCertificate('llm-client-brief', new Date(Date.now() + 4000));
    const app = await startSample({ SHIELD_LLM_CLIENT_CERT: brief.cert, SHIELD_LLM_CLIENT_KEY: brief.key });
    const before = await ready(app);
    expect(before.status).toBe(200);
    expect(before.body.info?.['upstreamCertificates']?.['warning']).toMatch(/expires in 0 day\(s\)/);
    // Past its end (whole seconds in the certificate, plus a margin).
    await sleep(5000);
    const after = await ready(app);
    expect(after.status).toBe(503);
    expect(after.body.error?.['upstreamCertificates']).toMatchObject({ status: 'down' });
    expect(String(after.body.error?.['upstreamCertificates']?.['expired'])).toContain(
      `upstream "llm" client certificate ${brief.cert} expired at`,
    );
  }, 30_000);
});
