/**
 * Keyless upstream calls by token exchange against the real stand-in LLM's token endpoint
 * (`POST /oauth/token`, shaped like OpenAI's workload identity federation): an RFC 8693 exchange
 * of a JWT-SVID (from a provider function, as the SPIFFE Workload API source plugs in) or of a
 * rotating token file, and OpenAI's X.509 flow where the client certificate is the credential.
 * The stand-in requires the tokens it issued (`requireIssuedTokens`); no API key exists.
 * Single-flight is counted server-side; refresh-ahead, a refresh failure with backoff while the
 * token is valid, and an expired token with the endpoint down are driven through real requests.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, SignJWT } from 'jose';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, TEST_CLIENT_SPIFFE_ID, type TestPki } from '@inference-shield/dev-pki';
import {
  createUpstreamClient,
  isShieldError,
  type UpstreamClient,
  type UpstreamOptions,
} from '@inference-shield/upstream/client';
import { createLlmStandin, type LlmStandin } from '../../apps/llm-standin/src/llm-standin.server.js';
import { MODEL_RESOURCE, startCredentialsIdp, type CredentialsIdp } from './credentials-fixtures.js';
import { connectProxy } from './upstream-fixtures.js';

const AUDIENCE = 'https://standin.llm.test';
const root = mkdtempSync(join(tmpdir(), 'shield-exchange-'));
let pki: TestPki;
let bundleKey: KeyObject;
let strangerKey: KeyObject;
let standin: LlmStandin;
let quick: LlmStandin;
let obo: LlmStandin;
let idp: CredentialsIdp;
const clients: UpstreamClient[] = [];

/** A JWT-SVID as the Workload API hands it out: `sub` a SPIFFE ID, `aud`, short `exp`. */
async function jwtSvid(sub: string, key = bundleKey, aud = AUDIENCE): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'bundle-1', typ: 'JWT' })
    .setSubject(sub)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);
}

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  bundleKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  strangerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  // The SPIFFE JWT bundle of shield.local: the public key the Workload API's JWT-SVIDs are signed with.
  const jwk = { ...(await exportJWK(bundleKey)), kid: 'bundle-1', alg: 'ES256', use: 'sig' };
  delete (jwk as { d?: string }).d;
  const tokenEndpoint = {
    audience: AUDIENCE,
    jwtIssuers: [{ spiffeTrustDomain: 'shield.local', jwks: { keys: [jwk] } }],
  };
  const files = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert };
  standin = await createLlmStandin({
    ...files,
    port: 0,
    tokenEndpoint,
    requireIssuedTokens: true,
    recordRequests: true,
  });
  // On behalf of: callers' access tokens from the real dev IdP (for the service, MODEL_RESOURCE),
  // the service acting for them with its JWT-SVID.
  idp = await startCredentialsIdp(pki, root);
  const { Agent, fetch } = await import('undici');
  const ca = new Agent({ connect: { ca: pki.ca.certPem } });
  const idpJwks = (await (await fetch(idp.idp.jwksUri, { dispatcher: ca })).json()) as { keys: never[] };
  await ca.close();
  obo = await createLlmStandin({
    ...files,
    port: 0,
    tokenEndpoint: {
      ...tokenEndpoint,
      jwtIssuers: [
        ...tokenEndpoint.jwtIssuers,
        { issuer: idp.idp.issuer, audience: MODEL_RESOURCE, jwks: idpJwks },
      ],
    },
    requireIssuedTokens: true,
    recordRequests: true,
  });
  quick = await createLlmStandin({
    ...files,
    port: 0,
    tokenEndpoint: { ...tokenEndpoint, tokenTtlSeconds: 6 },
    requireIssuedTokens: true,
    recordRequests: true,
  });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await standin?.close();
  await quick?.close();
  await obo?.close();
  await idp?.idp.close();
  rmSync(root, { recursive: true, force: true });
});

async function client(
  name: string,
  target: LlmStandin,
  credential: UpstreamOptions['credential'],
): Promise<UpstreamClient> {
  const c = await createUpstreamClient(name, {
    baseUrl: `${target.url}/v1`,
    ca: { file: pki.ca.cert },
    clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
    credential,
  });
  clients.push(c);
  return c;
}

const sdk = (c: UpstreamClient): OpenAI =>
  new OpenAI({ baseURL: c.baseUrl, apiKey: 'unused-replaced-by-upstream', fetch: c.fetch, maxRetries: 0 });

/** The subject the stand-in issued the token of the last API request to. */
function lastSubject(target: LlmStandin): string | undefined {
  const api = target.requests.filter((r) => r.path.startsWith('/v1/'));
  const auth = String(api.at(-1)?.headers.authorization ?? '');
  return target.tokenEndpoint?.verify(auth.slice('Bearer '.length))?.subject;
}

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isShieldError(err) ? { code: err.code, status: err.status } : err;
}

async function until(what: string, done: () => boolean | Promise<boolean>, step?: () => Promise<unknown>) {
  const deadline = Date.now() + 20_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await step?.();
    await sleep(100);
  }
}

describe('token exchange of a JWT-SVID from a provider (the Workload API source plugs in here)', () => {
  it('exchanges once for 16 concurrent SDK calls (counted by the stand-in), then reuses the token', async () => {
    const audiences: (string | undefined)[] = [];
    const llm = await client('svid', standin, {
      tokenExchange: {
        tokenEndpoint: `${standin.url}/oauth/token`,
        audience: AUDIENCE,
        subjectToken: {
          provider: async (aud) => {
            audiences.push(aud);
            return { token: await jwtSvid(TEST_CLIENT_SPIFFE_ID), expiresAt: Date.now() + 300_000 };
          },
        },
      },
    });
    const before = standin.tokenEndpoint?.stats.tokenRequests ?? -1;
    const openai = sdk(llm);
    const answers = await Promise.all(
      Array.from({ length: 16 }, () =>
        openai.chat.completions.create({
          model: 'standin-chat',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      ),
    );
    expect(answers.every((a) => a.choices[0]?.finish_reason === 'stop')).toBe(true);
    expect((standin.tokenEndpoint?.stats.tokenRequests ?? -1) - before).toBe(1);
    expect(audiences).toEqual([AUDIENCE]);
    expect(lastSubject(standin)).toBe(TEST_CLIENT_SPIFFE_ID);
    await openai.models.list();
    expect((standin.tokenEndpoint?.stats.tokenRequests ?? -1) - before).toBe(1);
  });

  it('a JWT-SVID signed by a key outside the bundle: 503 ERR_UPSTREAM_CREDENTIAL_REFUSED, no API call', async () => {
    const llm = await client('stranger', standin, {
      tokenExchange: {
        tokenEndpoint: `${standin.url}/oauth/token`,
        subjectToken: {
          provider: async () => ({ token: await jwtSvid(TEST_CLIENT_SPIFFE_ID, strangerKey) }),
        },
      },
    });
    const before = standin.stats.requests;
    expect(await codeOf(llm.fetch(`${llm.baseUrl}models`))).toEqual({
      code: 'ERR_UPSTREAM_CREDENTIAL_REFUSED',
      status: 503,
    });
    // Only the token request reached the stand-in.
    expect(standin.stats.requests - before).toBe(1);
  });

  it('a provider that fails: 503 ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE, no request at all', async () => {
    const llm = await client('broken', standin, {
      tokenExchange: {
        tokenEndpoint: `${standin.url}/oauth/token`,
        subjectToken: {
          provider: () => Promise.reject(new Error('Workload API agent unavailable')),
        },
      },
    });
    const before = standin.stats.requests;
    expect(await codeOf(llm.request({ path: 'models' }))).toEqual({
      code: 'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE',
      status: 503,
    });
    expect(standin.stats.requests).toBe(before);
  });
});

describe("on behalf of the caller: the caller's token exchanged with the workload as actor", () => {
  const credential = (): UpstreamOptions['credential'] => ({
    tokenExchange: {
      tokenEndpoint: `${obo.url}/oauth/token`,
      subjectToken: { callerToken: true },
      actorToken: { provider: async () => ({ token: await jwtSvid('spiffe://shield.local/sample-model') }) },
    },
  });

  it('exchanges each caller once, acting as the workload; never without a caller', async () => {
    const llm = await client('obo', obo, credential());
    const alice = await idp.idp.getToken({ clientId: 'llm-secret', scope: 'llm:chat' });
    const bob = await idp.idp.getToken({ clientId: 'llm-secret', scope: 'llm:chat' });
    expect(alice).not.toBe(bob);
    const tokens = obo.tokenEndpoint;
    const before = tokens?.stats.tokenRequests ?? -1;
    const models = () => llm.fetch(`${llm.baseUrl}models`).then((r) => r.status);
    expect(await Promise.all([1, 2, 3].map(() => llm.onBehalfOf(alice, models)))).toEqual([200, 200, 200]);
    const aliceBearer = String(obo.requests.at(-1)?.headers.authorization ?? '').slice('Bearer '.length);
    expect(tokens?.verify(aliceBearer)).toEqual({
      via: 'jwt',
      subject: 'llm-secret',
      actor: 'spiffe://shield.local/sample-model',
    });
    expect(await llm.onBehalfOf(bob, () => llm.request({ path: 'models' }).then((r) => r.statusCode))).toBe(
      200,
    );
    expect((tokens?.stats.tokenRequests ?? -1) - before).toBe(2);
    expect(obo.requests.at(-1)?.headers.authorization).not.toBe(`Bearer ${aliceBearer}`);
    // The caller's token went to the token endpoint only, never to the API.
    const api = obo.requests.filter((r) => r.path.startsWith('/v1/'));
    expect(JSON.stringify(api)).not.toContain(alice);
    // Outside onBehalfOf there is no caller: a typed 503, nothing sent.
    const apiCalls = api.length;
    expect(await codeOf(llm.fetch(`${llm.baseUrl}models`))).toEqual({
      code: 'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE',
      status: 503,
    });
    expect(obo.requests.filter((r) => r.path.startsWith('/v1/')).length).toBe(apiCalls);
  });

  it('a caller token the token endpoint does not trust: 503 ERR_UPSTREAM_CREDENTIAL_REFUSED', async () => {
    const llm = await client('obo-forged', obo, credential());
    const forged = await jwtSvid('spiffe://shield.local/not-a-caller', strangerKey);
    expect(await codeOf(llm.onBehalfOf(forged, () => llm.fetch(`${llm.baseUrl}models`)))).toEqual({
      code: 'ERR_UPSTREAM_CREDENTIAL_REFUSED',
      status: 503,
    });
  });

  it('is an explicit choice: needs an actor token, and onBehalfOf is refused elsewhere', async () => {
    await expect(
      client('obo-no-actor', obo, {
        tokenExchange: { tokenEndpoint: `${obo.url}/oauth/token`, subjectToken: { callerToken: true } },
      }),
    ).rejects.toThrow(/needs grant "token-exchange" and .*actorToken/);
    const plain = await client('plain', obo, {
      certificateExchange: { tokenEndpoint: `${obo.url}/oauth/token` },
    });
    expect(() => plain.onBehalfOf('x', () => 1)).toThrow(TypeError);
  });
});

describe('RFC 7523 jwt-bearer grant (Anthropic workload identity federation)', () => {
  it('sends the JWT as assertion, JSON body with the provider parameters, at /v1/oauth/token', async () => {
    const llm = await client('jwt-bearer', standin, {
      tokenExchange: {
        grant: 'jwt-bearer',
        tokenEndpoint: `${standin.url}/v1/oauth/token`,
        encoding: 'json',
        parameters: {
          federation_rule_id: 'fdrl_standin',
          organization_id: '00000000-0000-4000-8000-000000000000',
          service_account_id: 'svac_standin',
        },
        subjectToken: {
          provider: async () => ({ token: await jwtSvid('spiffe://shield.local/claude-caller') }),
        },
      },
    });
    expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200);
    expect(lastSubject(standin)).toBe('spiffe://shield.local/claude-caller');
    const exchange = standin.requests.filter((r) => r.path === '/v1/oauth/token').at(-1);
    expect(exchange?.headers['content-type']).toBe('application/json');
  });

  it('refuses token-exchange-only options with jwt-bearer', async () => {
    await expect(
      client('jwt-bearer-bad', standin, {
        tokenExchange: {
          grant: 'jwt-bearer',
          tokenEndpoint: `${standin.url}/v1/oauth/token`,
          subjectTokenType: 'urn:ietf:params:oauth:token-type:id_token',
          subjectToken: { file: '/nowhere' },
        },
      }),
    ).rejects.toThrow(/for grant "token-exchange" only/);
  });
});

describe('token exchange of a token file (Kubernetes projected token, spiffe-helper)', () => {
  it('re-reads the file when it rotates; refreshes ahead of expiry with no failed call', async () => {
    const file = join(root, 'svid.token');
    writeFileSync(file, `${await jwtSvid('spiffe://shield.local/pod-a')}\n`);
    const llm = await client('file', quick, {
      tokenExchange: { tokenEndpoint: `${quick.url}/oauth/token`, subjectToken: { file } },
    });
    const tokens = quick.tokenEndpoint;
    if (tokens === undefined) throw new Error('stand-in without token endpoint');
    const issued = tokens.stats.tokensIssued;
    expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200);
    expect(lastSubject(quick)).toBe('spiffe://shield.local/pod-a');
    // Rotated the way kubelet does it: a new file renamed over the old one.
    writeFileSync(`${file}.new`, await jwtSvid('spiffe://shield.local/pod-b'));
    renameSync(`${file}.new`, file);
    // The token lives 6 s; calls keep going until the client refreshed it (ahead of expiry).
    await until(
      'the token was refreshed',
      () => tokens.stats.tokensIssued - issued >= 2,
      async () => expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200),
    );
    expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200);
    expect(lastSubject(quick)).toBe('spiffe://shield.local/pod-b');
    expect(llm.credentialStats()).toMatchObject({ tokenFailures: 0 });
  });

  it('a missing file: 503 ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE naming the file, never its content', async () => {
    const llm = await client('nofile', quick, {
      tokenExchange: {
        tokenEndpoint: `${quick.url}/oauth/token`,
        subjectToken: { file: join(root, 'missing.token') },
      },
    });
    const err = await llm.request({ path: 'models' }).catch((e: unknown) => e);
    expect(isShieldError(err) && err.code).toBe('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
    expect(isShieldError(err) && err.details.detail).toContain('missing.token');
  });
});

describe('refresh failure while the token is valid, then expiry with the endpoint down', () => {
  it('keeps the valid token through failed refreshes (backoff), 503 once expired, recovers after', async () => {
    const tokens = quick.tokenEndpoint;
    if (tokens === undefined) throw new Error('stand-in without token endpoint');
    const refreshErrors: string[] = [];
    const llm = await createUpstreamClient(
      'outage',
      {
        baseUrl: `${quick.url}/v1`,
        ca: { file: pki.ca.cert },
        clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
        credential: { certificateExchange: { tokenEndpoint: `${quick.url}/oauth/token` } },
      },
      { onCredentialRefreshError: (err) => refreshErrors.push(err.code) },
    );
    clients.push(llm);
    try {
      expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200);
      const first = quick.requests.at(-1)?.headers.authorization;
      tokens.outage = true;
      // Refresh-ahead fails; the client retries with backoff; calls still use the first token.
      await until(
        'two refreshes failed',
        () => (llm.credentialStats()?.refreshFailures ?? 0) >= 2,
        async () => {
          const res = await llm.fetch(`${llm.baseUrl}models`).catch((e: unknown) => e);
          // Once the first token expired, calls fail: stop calling, the count is already checked.
          if (res instanceof Response) expect(quick.requests.at(-1)?.headers.authorization).toBe(first);
        },
      );
      expect(refreshErrors.slice(0, 2)).toEqual([
        'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE',
        'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE',
      ]);
      expect(tokens.stats.outageRefusals).toBeGreaterThanOrEqual(2);
      // Past its expiry, with the endpoint still down: typed 503, nothing sent to the API.
      await until('the first token expired', async () => {
        const r = await codeOf(llm.fetch(`${llm.baseUrl}models`));
        return r !== undefined && !(r instanceof Response);
      });
      const apiCalls = quick.requests.filter((r) => r.path.startsWith('/v1/')).length;
      expect(await codeOf(llm.fetch(`${llm.baseUrl}models`))).toEqual({
        code: 'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE',
        status: 503,
      });
      expect(quick.requests.filter((r) => r.path.startsWith('/v1/')).length).toBe(apiCalls);
      tokens.outage = false;
      await until(
        'calls work again',
        async () => (await codeOf(llm.fetch(`${llm.baseUrl}models`))) === undefined,
      );
      expect(quick.requests.at(-1)?.headers.authorization).not.toBe(first);
    } finally {
      tokens.outage = false;
    }
  });
});

describe('certificate exchange (OpenAI X.509 flow): the client certificate is the credential', () => {
  it('gets a token on the mTLS connection with no subject token; JSON body with provider parameters', async () => {
    const llm = await client('x509', standin, {
      certificateExchange: {
        tokenEndpoint: `${standin.url}/oauth/token`,
        encoding: 'json',
        parameters: { identity_provider_id: 'idp_standin', service_account_id: 'svc_standin' },
      },
    });
    const res = await sdk(llm).chat.completions.create({
      model: 'standin-chat',
      messages: [{ role: 'user', content: 'who am I?' }],
    });
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(lastSubject(standin)).toBe(TEST_CLIENT_SPIFFE_ID);
    const exchange = standin.requests.filter((r) => r.path === '/oauth/token').at(-1);
    expect(exchange?.headers['content-type']).toBe('application/json');
    expect(exchange?.headers.authorization).toBeUndefined();
  });

  it('goes through the upstream egress proxy, the token request included (TLS end to end)', async () => {
    const proxy = await connectProxy();
    try {
      const llm = await createUpstreamClient('x509-proxied', {
        baseUrl: `${standin.url}/v1`,
        ca: { file: pki.ca.cert },
        clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
        egressProxy: { url: `http://127.0.0.1:${proxy.port}` },
        credential: { certificateExchange: { tokenEndpoint: `${standin.url}/oauth/token` } },
      });
      clients.push(llm);
      const before = standin.tokenEndpoint?.stats.tokenRequests ?? -1;
      expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200);
      expect((standin.tokenEndpoint?.stats.tokenRequests ?? -1) - before).toBe(1);
      // Two tunnels, the token endpoint's pool and the API's: both through the proxy.
      expect(proxy.connects).toEqual(Array(2).fill(`CONNECT localhost:${standin.port} HTTP/1.1`));
      // Inside the tunnels, ciphertext only: no token crossed the proxy in clear.
      expect(proxy.relayed().toString('latin1')).not.toContain('standin-at.');
    } finally {
      await proxy.close();
    }
  });

  it('a rotated client certificate is exchanged for a new token, with no failed call', async () => {
    const cert = join(root, 'rot.pem');
    const key = join(root, 'rot-key.pem');
    copyFileSync(pki.client.cert, cert);
    copyFileSync(pki.client.key, key);
    const llm = await createUpstreamClient('x509-rotating', {
      baseUrl: `${standin.url}/v1`,
      ca: { file: pki.ca.cert },
      clientCertificate: { cert, key, watch: true },
      credential: { certificateExchange: { tokenEndpoint: `${standin.url}/oauth/token` } },
    });
    clients.push(llm);
    expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200);
    expect(lastSubject(standin)).toBe(TEST_CLIENT_SPIFFE_ID);
    // Replaced as cert-manager does: written aside, renamed into place.
    const next = await pki.ca.authority.issueClient({ spiffeId: 'spiffe://shield.local/rotated' });
    writeFileSync(`${key}.tmp`, next.keyPem, { mode: 0o600 });
    writeFileSync(`${cert}.tmp`, next.certPem);
    renameSync(`${key}.tmp`, key);
    renameSync(`${cert}.tmp`, cert);
    await until('the certificate was reloaded', () => llm.stats().certificateReloads === 1);
    // The token obtained with the old certificate is replaced in the background; calls go on.
    await until(
      'calls carry a token issued to the new certificate',
      () => lastSubject(standin) === 'spiffe://shield.local/rotated',
      async () => expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200),
    );
    expect(llm.credentialStats()).toMatchObject({ tokensObtained: 2, tokenFailures: 0 });
  });

  it('is refused at start-up without a client certificate', async () => {
    await expect(
      createUpstreamClient('x509-nocert', {
        baseUrl: `${standin.url}/v1`,
        ca: { file: pki.ca.cert },
        credential: { certificateExchange: { tokenEndpoint: `${standin.url}/oauth/token` } },
      }),
    ).rejects.toThrow(/needs the upstream's "clientCertificate"/);
  });

  it('the stand-in that requires issued tokens refuses a static key, and both credentials at once are refused', async () => {
    const keyFile = join(root, 'static-key');
    writeFileSync(keyFile, 'sk-static-key-not-accepted-0001\n', { mode: 0o600 });
    const keyed = await createUpstreamClient('keyed', {
      baseUrl: `${standin.url}/v1`,
      ca: { file: pki.ca.cert },
      clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
      apiKey: { file: keyFile },
    });
    clients.push(keyed);
    expect((await keyed.fetch(`${keyed.baseUrl}models`)).status).toBe(401);
    await expect(
      createUpstreamClient('both', {
        baseUrl: `${standin.url}/v1`,
        clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
        apiKey: { file: keyFile },
        credential: { certificateExchange: { tokenEndpoint: `${standin.url}/oauth/token` } },
      }),
    ).rejects.toThrow(/are exclusive/);
  });
});
