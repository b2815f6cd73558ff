import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, TEST_CLIENT_SPIFFE_ID, type TestPki } from '@inference-shield/dev-pki';
import { createLlmStandin, type LlmStandin } from './llm-standin.server.js';

// The stand-in's token endpoint over real mTLS: what it refuses, with OAuth error bodies, and that
// an issued token (and only one) replaces the API key.

const AUD = 'https://standin.test';
const TE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const root = mkdtempSync(join(tmpdir(), 'standin-token-'));
let pki: TestPki;
let key: KeyObject;
let standin: LlmStandin;
let agent: Agent;

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const jwk = { ...(await exportJWK(key)), kid: 'k1', use: 'jwt-svid' };
  delete (jwk as { d?: string }).d;
  standin = await createLlmStandin({
    port: 0,
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
    apiKeys: ['sk-standin-static-key-0001'],
    requireIssuedTokens: true,
    tokenEndpoint: {
      audience: AUD,
      tokenTtlSeconds: 60,
      jwtIssuers: [{ spiffeTrustDomain: 'shield.local', jwks: { keys: [jwk] } }],
    },
  });
  agent = new Agent({ connect: { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem } });
});

afterAll(async () => {
  await agent.close();
  await standin.close();
  rmSync(root, { recursive: true, force: true });
});

function svid(claims: { sub?: string; aud?: string; iat?: number; exp?: number } = {}, signer = key) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setSubject(claims.sub ?? 'spiffe://shield.local/w')
    .setAudience(claims.aud ?? AUD)
    .setIssuedAt(claims.iat ?? now)
    .setExpirationTime(claims.exp ?? now + 300)
    .sign(signer);
}

async function post(body: string, type = 'application/x-www-form-urlencoded', path = '/oauth/token') {
  const res = await fetch(`${standin.url}${path}`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': type },
    body,
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

const form = (p: Record<string, string>) => new URLSearchParams(p).toString();

describe('stand-in token endpoint', () => {
  it('issues a short-lived token for a JWT-SVID, with no-store, that the API accepts instead of a key', async () => {
    const res = await post(
      form({ grant_type: TE, subject_token: await svid(), subject_token_type: JWT_TYPE }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.json).toMatchObject({ token_type: 'Bearer', expires_in: 60 });
    const token = String(res.json.access_token);
    const api = (authorization: string) =>
      fetch(`${standin.url}/v1/models`, { dispatcher: agent, headers: { authorization } }).then(
        (r) => r.status,
      );
    expect(await api(`Bearer ${token}`)).toBe(200);
    // requireIssuedTokens: the static key is refused; a forged token of the right shape too.
    expect(await api('Bearer sk-standin-static-key-0001')).toBe(401);
    expect(await api(`Bearer standin-at.${'A'.repeat(43)}`)).toBe(401);
  });

  it('the X.509 flow: no subject_token, the client certificate is the subject (JSON body)', async () => {
    const res = await post(JSON.stringify({ grant_type: TE }), 'application/json');
    expect(res.status).toBe(200);
    expect(standin.tokenEndpoint?.verify(String(res.json.access_token))).toEqual({
      via: 'x509',
      subject: TEST_CLIENT_SPIFFE_ID,
    });
  });

  it('the jwt-bearer grant at /v1/oauth/token', async () => {
    const res = await post(
      JSON.stringify({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: await svid() }),
      'application/json',
      '/v1/oauth/token',
    );
    expect(res.status).toBe(200);
  });

  const now = () => Math.floor(Date.now() / 1000);
  it.each([
    ['another grant', async () => form({ grant_type: 'client_credentials' }), 400, 'unsupported_grant_type'],
    [
      'a repeated parameter',
      async () => `grant_type=${encodeURIComponent(TE)}&grant_type=x`,
      400,
      'invalid_request',
    ],
    [
      'a token type that is not a JWT',
      async () => form({ grant_type: TE, subject_token: await svid(), subject_token_type: 'urn:x:saml2' }),
      400,
      'invalid_request',
    ],
    [
      'a JWT-SVID signed by another key',
      async () =>
        form({
          grant_type: TE,
          subject_token: await svid({}, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
          subject_token_type: JWT_TYPE,
        }),
      400,
      'invalid_grant',
    ],
    [
      'another trust domain',
      async () =>
        form({
          grant_type: TE,
          subject_token: await svid({ sub: 'spiffe://evil.example/w' }),
          subject_token_type: JWT_TYPE,
        }),
      400,
      'invalid_grant',
    ],
    [
      'another audience',
      async () =>
        form({
          grant_type: TE,
          subject_token: await svid({ aud: 'https://other' }),
          subject_token_type: JWT_TYPE,
        }),
      400,
      'invalid_grant',
    ],
    [
      'an expired JWT',
      async () =>
        form({
          grant_type: TE,
          subject_token: await svid({ iat: now() - 600, exp: now() - 300 }),
          subject_token_type: JWT_TYPE,
        }),
      400,
      'invalid_grant',
    ],
    [
      'an iat in the future',
      async () =>
        form({
          grant_type: TE,
          subject_token: await svid({ iat: now() + 3600, exp: now() + 7200 }),
          subject_token_type: JWT_TYPE,
        }),
      400,
      'invalid_grant',
    ],
    [
      'alg none',
      async () => {
        const b = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const unsigned = `${b({ alg: 'none' })}.${b({ sub: 'spiffe://shield.local/w', aud: AUD, exp: now() + 60 })}.`;
        return form({ grant_type: TE, subject_token: unsigned, subject_token_type: JWT_TYPE });
      },
      400,
      'invalid_grant',
    ],
    [
      'an oversized subject token',
      async () => form({ grant_type: TE, subject_token: 'a'.repeat(20_000), subject_token_type: JWT_TYPE }),
      400,
      'invalid_grant',
    ],
    [
      'a body over 64 KiB',
      async () => form({ grant_type: TE, pad: 'a'.repeat(70_000) }),
      400,
      'invalid_request',
    ],
  ])('refuses %s', async (_name, body, status, error) => {
    const res = await post(await body());
    expect({ status: res.status, error: res.json.error }).toEqual({ status, error });
  });

  it('answers 503 temporarily_unavailable during an outage, and counts it', async () => {
    const tokens = standin.tokenEndpoint;
    if (tokens === undefined) throw new Error('no token endpoint');
    tokens.outage = true;
    try {
      const res = await post(form({ grant_type: TE }));
      expect({ status: res.status, error: res.json.error }).toEqual({
        status: 503,
        error: 'temporarily_unavailable',
      });
      expect(tokens.stats.outageRefusals).toBeGreaterThan(0);
    } finally {
      tokens.outage = false;
    }
  });

  it.each([
    [
      'requireIssuedTokens without a token endpoint',
      { apiKeys: ['sk-0123456789'], requireIssuedTokens: true },
      /needs "tokenEndpoint"/,
    ],
    ['no key and no token endpoint', { apiKeys: [] }, /"apiKeys"/],
    ['a token TTL of a day', { tokenEndpoint: { tokenTtlSeconds: 86_400 } }, /tokenTtlSeconds/],
    [
      'JWT issuers without an audience',
      { tokenEndpoint: { jwtIssuers: [{ issuer: 'https://i', jwks: { keys: [] } }] } },
      /audience/,
    ],
  ])('refuses %s at start-up', async (_name, extra, message) => {
    await expect(
      createLlmStandin({ port: 0, cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, ...extra }),
    ).rejects.toThrow(message);
  });
});
