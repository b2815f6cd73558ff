/**
 * Attack: a DPoP proof without the server nonce the service requires (RFC 9449 §8-9).
 *
 * The app requires nonces (`dpop.nonce`: stateless, an HMAC of a time step, the previous step's
 * nonce still accepted). A real client (oauth4webapi's `DPoP()` handle) that has no nonce yet is
 * refused with `use_dpop_nonce` and a fresh `DPoP-Nonce`, keeps that nonce (as RFC 9449 clients
 * do) and succeeds on retry. A made-up nonce, or one from another secret (another deployment),
 * is no nonce. Both doors: the Shield guard and the passport strategy.
 */
import 'reflect-metadata';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { AUDIENCE, ISSUER, issuerKey, type IssuerKey } from './attack-kit.js';
import { DpopClient, PUBLIC_ORIGIN } from '../../identity/support/dpop-client.js';
import { DOORS, DPOP_ROUTES, dpopFixtureModule } from '../../identity/support/dpop-fixture.js';
import { startApp, type TestApp } from '../../support/harness.js';

const NONCE_SECRET = 'dpop-attack-spec-nonce-secret-32-bytes-at-least';
const dir = mkdtempSync(join(tmpdir(), 'attack-dpop-nonce-'));
let pki: TestPki;
let key: IssuerKey;
let app: TestApp;

beforeAll(async () => {
  [pki, key] = await Promise.all([createTestPki(dir), issuerKey('k1')]);
  app = await startApp(
    dpopFixtureModule({
      oidc: {
        issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [key.jwk] }, algorithms: ['ES256'] }],
      },
      dpop: { origin: PUBLIC_ORIGIN, nonce: { secret: NONCE_SECRET, rotationSeconds: 60 } },
    }),
    { pki },
  );
});

afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function boundClient(): Promise<{ client: DpopClient; token: string }> {
  const client = await DpopClient.create();
  return { client, token: await key.sign({ cnf: { jkt: client.jkt } }) };
}

describe.each(DOORS)('required DPoP nonce, %s door', (door) => {
  const path = DPOP_ROUTES[door];

  it('no nonce → 401 use_dpop_nonce with a fresh DPoP-Nonce; the client retries with it → 200', async () => {
    const { client, token } = await boundClient();
    const first = await client.call(app.port, app.ca, path, token);
    expect({ status: first.status, code: first.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_NONCE_REQUIRED',
    });
    expect(first.headers.get('www-authenticate')).toContain(
      'DPoP error="use_dpop_nonce", error_description="ERR_DPOP_NONCE_REQUIRED", algs="',
    );
    const nonce = first.headers.get('dpop-nonce');
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const retry = await client.call(app.port, app.ca, path, token);
    expect(retry.status).toBe(200);
    expect(retry.body['dpopKeyThumbprint']).toBe(client.jkt);
    // RFC 9449 §8.2: the success carries the current nonce too (same step: the same value).
    expect(retry.headers.get('dpop-nonce')).toBe(nonce);
  });

  it.each([
    ['a made-up nonce', () => 'A'.repeat(22)],
    [
      "another deployment's nonce (another secret, the same time step)",
      () =>
        createHmac('sha256', 'another-secret-of-another-deployment-32b')
          .update(`inference-shield dpop nonce ${Math.floor(Date.now() / 60_000)}`)
          .digest()
          .subarray(0, 16)
          .toString('base64url'),
    ],
    ['an empty nonce', () => ''],
  ])('%s → 401 ERR_DPOP_NONCE_REQUIRED', async (_name, nonceOf) => {
    const { client, token } = await boundClient();
    const r = await client.call(app.port, app.ca, path, token, {
      tamper: (_h, p) => void (p['nonce'] = nonceOf()),
    });
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_NONCE_REQUIRED',
    });
    expect(r.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('every 401 of the route hands out the current nonce (a Bearer-sent DPoP token included)', async () => {
    const { token } = await boundClient();
    const r = await app.call(path, { method: 'POST', json: {}, token });
    expect(r.body['code']).toBe('ERR_DPOP_TOKEN_AS_BEARER');
    expect(String(r.headers['dpop-nonce'])).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});

describe('required DPoP nonce on the Fastify adapter (guard door)', () => {
  let fastify: TestApp;
  beforeAll(async () => {
    // No passport module: passport's strategy registry is process-wide (the Express app owns it).
    fastify = await startApp(
      dpopFixtureModule(
        {
          oidc: {
            issuers: [
              { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [key.jwk] }, algorithms: ['ES256'] },
            ],
          },
          dpop: { origin: PUBLIC_ORIGIN, nonce: { secret: NONCE_SECRET, rotationSeconds: 60 } },
        },
        { passport: false },
      ),
      { pki, adapter: 'fastify' },
    );
  });
  afterAll(async () => {
    await fastify?.close();
  });

  it('no nonce → use_dpop_nonce and a DPoP-Nonce; the retry passes and gets the nonce again', async () => {
    const { client, token } = await boundClient();
    const first = await client.call(fastify.port, fastify.ca, DPOP_ROUTES.guard, token);
    expect({ status: first.status, code: first.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_NONCE_REQUIRED',
    });
    const nonce = first.headers.get('dpop-nonce');
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const retry = await client.call(fastify.port, fastify.ca, DPOP_ROUTES.guard, token);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('dpop-nonce')).toBe(nonce);
  });
});
