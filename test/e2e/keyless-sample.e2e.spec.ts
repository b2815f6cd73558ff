/**
 * Issue #16's end-to-end proof: the sample model server calls its hosted LLM with no static
 * credential anywhere. The sample runs in-process behind the real bootstrap (harness), with no API
 * key file. Its identity comes from a real SPIFFE Workload API server (test/spiffe/support): the
 * X.509-SVID is its client certificate towards the stand-in LLM, and a JWT-SVID is exchanged
 * (RFC 8693, over that mTLS connection) at the stand-in's token endpoint for a short-lived token,
 * which the relay's `/v1/chat/completions` sends. The stand-in requires issued tokens: a key would
 * be refused. Then every file of the test's temp dirs and every log line is scanned: no API key,
 * client secret, access token, JWT or bearer token; the dev PKI's private keys are expected there.
 */
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { startDevIdp, type DevIdp } from '../../apps/dev-idp/src/index.js';
import { createLlmStandin, type LlmStandin } from '../../apps/llm-standin/src/llm-standin.server.js';
import { AppModule } from '../../sample-model/src/app/app.module.js';
import { loadSampleConfig } from '../../sample-model/src/app/sample-config.js';
import { call, CaptureLogger, startApp, type TestApp } from '../support/harness.js';
import {
  DevCertificateAuthority,
  issueSvid,
  startWorkloadApi,
  type TestWorkloadApi,
} from '../spiffe/support/workload-api.server.js';

const SAMPLE_ID = 'spiffe://shield.local/sample-model';
const LLM_AUDIENCE = 'https://standin.llm.test';
const SAMPLE_AUDIENCE = 'https://sample.keyless.test';

const root = mkdtempSync(join(tmpdir(), 'shield-keyless-'));
const logger = new CaptureLogger();
const consoleLines: string[] = [];
let pki: TestPki;
let agent: TestWorkloadApi;
let standin: LlmStandin;
let idp: DevIdp;
let sample: TestApp;
/** Every bearer credential seen on the wire in this test, to search for afterwards. */
const secrets = new Set<string>();

beforeAll(async () => {
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      consoleLines.push(args.map(String).join(' '));
    });
  }
  pki = await createTestPki(join(root, 'pki'));

  // The workload's SPIFFE identity: a trust domain CA, an X.509-SVID, JWT-SVIDs on request.
  const spiffeCa = await DevCertificateAuthority.create({ commonName: 'shield.local SPIFFE CA' });
  agent = await startWorkloadApi();
  agent.setX509({ svids: [await issueSvid(spiffeCa, SAMPLE_ID)] });
  const spiffeCaFile = join(root, 'spiffe-ca.pem');
  writeFileSync(spiffeCaFile, spiffeCa.certPem);

  // The hosted LLM: mTLS with SVIDs of shield.local, tokens only from its own token endpoint.
  standin = await createLlmStandin({
    cert: pki.server.cert,
    key: pki.server.key,
    ca: spiffeCaFile,
    port: 0,
    tokenEndpoint: {
      // Short-lived, so that the refresh (and its failure) happens within the test.
      tokenTtlSeconds: 8,
      audience: LLM_AUDIENCE,
      jwtIssuers: [
        {
          spiffeTrustDomain: 'shield.local',
          jwks: JSON.parse((await agent.jwks()).toString()) as { keys: never[] },
        },
      ],
      acceptClientCertificate: false,
    },
    requireIssuedTokens: true,
    recordRequests: true,
  });

  // The callers' IdP (the sample's inbound side, unchanged by this issue).
  const idpPki = join(root, 'idp-pki');
  mkdirSync(idpPki, { mode: 0o700 });
  for (const [name, pem] of [
    ['ca.pem', pki.ca.certPem],
    ['localhost.pem', pki.server.certPem],
    ['localhost-key.pem', pki.server.keyPem],
  ] as const) {
    writeFileSync(join(idpPki, name), pem, { mode: 0o600, flag: 'w' });
  }
  idp = await startDevIdp({
    port: 0,
    pkiDir: idpPki,
    keysFile: join(root, 'idp', 'jwks.json'),
    audience: SAMPLE_AUDIENCE,
  });

  const config = loadSampleConfig({
    SHIELD_PKI_DIR: pki.dir,
    SHIELD_OIDC_ISSUER: idp.issuer,
    SHIELD_OIDC_AUDIENCE: SAMPLE_AUDIENCE,
    SHIELD_OIDC_CA: pki.ca.cert,
    SHIELD_LLM_URL: `${standin.url}/v1`,
    SHIELD_LLM_CA: pki.ca.cert,
    SHIELD_LLM_TOKEN_AUDIENCE: LLM_AUDIENCE,
    SPIFFE_ENDPOINT_SOCKET: agent.address,
  });
  expect(config.llm.apiKeyFile).toBeUndefined();
  sample = await startApp(AppModule.forConfig(config), { pki, mtls: 'optional', logger });
}, 60_000);

afterAll(async () => {
  await sample?.close();
  await standin?.close();
  await idp?.close();
  await agent?.close();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('the sample calls its LLM keyless, with a SPIFFE identity', () => {
  it('relays a chat completion: token obtained by exchanging a JWT-SVID over mTLS with the X.509-SVID', async () => {
    const caller = await idp.getToken({ scope: 'llm:chat' });
    secrets.add(caller);
    const res = await call(sample.port, {
      ca: pki.ca.certPem,
      path: '/v1/chat/completions',
      method: 'POST',
      token: caller,
      json: { model: 'standin-chat', messages: [{ role: 'user', content: 'Who holds the key?' }] },
    });
    expect(res.status).toBe(200);
    expect((res.body as { choices?: { finish_reason?: string }[] }).choices?.[0]?.finish_reason).toBe('stop');

    // One exchange at the token endpoint, then the API call with the issued token.
    const tokens = standin.tokenEndpoint;
    expect(tokens?.stats).toMatchObject({ tokenRequests: 1, tokensIssued: 1, tokenRefusals: 0 });
    expect(agent.jwtSvidsIssued).toBe(1);
    const api = standin.requests.filter((r) => r.path === '/v1/chat/completions');
    expect(api).toHaveLength(1);
    const bearer = String(api[0]?.headers.authorization ?? '').slice('Bearer '.length);
    secrets.add(bearer);
    // The stand-in issued it to the JWT-SVID's subject: the sample's SPIFFE ID.
    expect(tokens?.verify(bearer)).toEqual({ via: 'jwt', subject: SAMPLE_ID });
    // The caller's token never reaches the LLM.
    expect(JSON.stringify(standin.requests)).not.toContain(caller);
  });

  it('reuses the token for the next calls (no second exchange)', async () => {
    const caller = await idp.getToken({ scope: 'llm:chat' });
    secrets.add(caller);
    for (let i = 0; i < 3; i++) {
      const res = await call(sample.port, {
        ca: pki.ca.certPem,
        path: '/v1/chat/completions',
        method: 'POST',
        token: caller,
        json: { model: 'standin-chat', messages: [{ role: 'user', content: `again ${i}` }] },
      });
      expect(res.status).toBe(200);
    }
    expect(standin.tokenEndpoint?.stats.tokenRequests).toBe(1);
    expect(agent.jwtSvidsIssued).toBe(1);
  });
});

describe('the sample readiness with its real identity and TLS', () => {
  it('GET /health/ready: the IdP issuer keys loaded, certificates valid, not draining', async () => {
    const res = await call(sample.port, { ca: pki.ca.certPem, path: '/health/ready' });
    expect(res.status).toBe(200);
    const info = res.body.info as Record<string, Record<string, unknown>>;
    expect(info.https).toEqual({ status: 'up', draining: false });
    expect(info.tls?.status).toBe('up');
    const issuers = info.identity?.issuers as Record<string, { state: string; keys: number }>;
    expect(issuers[idp.issuer]).toMatchObject({ state: 'ok' });
    expect(issuers[idp.issuer]?.keys).toBeGreaterThan(0);
  });
});

describe('a refresh that fails while the token is valid', () => {
  it('keeps serving with the current token and logs the code, never the token', async () => {
    const tokens = standin.tokenEndpoint;
    if (tokens === undefined) throw new Error('stand-in without token endpoint');
    const caller = await idp.getToken({ scope: 'llm:chat' });
    secrets.add(caller);
    tokens.outage = true;
    try {
      const deadline = Date.now() + 20_000;
      while (!logger.lines.some((l) => l.includes('token refresh failed'))) {
        if (Date.now() > deadline) throw new Error('no refresh failure was logged');
        const res = await call(sample.port, {
          ca: pki.ca.certPem,
          path: '/v1/chat/completions',
          method: 'POST',
          token: caller,
          json: { model: 'standin-chat', messages: [{ role: 'user', content: 'still there?' }] },
        });
        expect(res.status).toBe(200);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      tokens.outage = false;
    }
    const line = logger.lines.find((l) => l.includes('token refresh failed')) ?? '';
    expect(line).toMatch(
      /^warn upstream "llm": token refresh failed, current token kept until it expires: ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE \(token endpoint answered 503\)/,
    );
  });
});

describe('no static credential anywhere', () => {
  function filesUnder(dir: string): string[] {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .map((f) => join(dir, f))
      .filter((f) => statSync(f, { throwIfNoEntry: false })?.isFile() === true);
  }

  it('has no API key file: the only secrets on disk are the PKI private keys and the IdP signing keys', () => {
    const files = [...filesUnder(root), ...filesUnder(agent.dir)];
    const names = files.map((f) => f.slice(f.lastIndexOf('/') + 1));
    expect(names.filter((n) => /api-key|apikey|secret|token/i.test(n))).toEqual([]);
    // What is there: certificates, their keys, CRLs, the IdP's JWKS, the agent's socket.
    for (const n of names) expect(n).toMatch(/\.pem$|^jwks\.json$|^agent\.sock$/);
  });

  it('finds no key, secret, access token, JWT or bearer token in any file or log line', () => {
    expect(secrets.size).toBeGreaterThanOrEqual(3);
    const texts = [
      ...[...filesUnder(root), ...filesUnder(agent.dir)]
        .filter((f) => !f.endsWith('agent.sock'))
        .map((f) => ({ where: f, text: readFileSync(f, 'utf8') })),
      ...logger.lines.map((text, i) => ({ where: `log line ${i}`, text })),
      ...consoleLines.map((text, i) => ({ where: `console line ${i}`, text })),
    ];
    expect(logger.lines.length).toBeGreaterThan(0);
    const patterns: [string, RegExp][] = [
      ['a JWT (JWT-SVID, access token)', /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+/],
      ['an issued stand-in token', /standin-at\.[\w-]{20,}/],
      ['an API key', /\bsk-[\w-]{16,}/],
      ['a bearer credential', /Bearer\s+[\w.~+/-]{16,}/i],
      ['a client secret', /client_secret|dev-only-[\w-]*secret/i],
    ];
    const leaks = (list: { where: string; text: string }[]): string[] => {
      const out: string[] = [];
      for (const { where, text } of list) {
        for (const secret of secrets)
          if (text.includes(secret)) out.push(`${where}: a credential used in this test`);
        for (const [what, re] of patterns) if (re.test(text)) out.push(`${where}: ${what}`);
      }
      return out;
    };
    // The scan itself can fail: each credential of this test, planted in a line, is found.
    for (const secret of secrets)
      expect(leaks([{ where: 'control', text: `x ${secret} y` }])).not.toEqual([]);
    const found = leaks(texts);
    expect(found).toEqual([]);
  });
});
