/**
 * Attack: stolen, replayed or forged DPoP proofs (RFC 9449), the rows of docs/threat-model.md.
 *
 * Every proof here is made by a real DPoP client (oauth4webapi's `DPoP()` handle), honest or
 * tampered with through its `modifyAssertion` hook before signing; the DPoP-bound access tokens
 * are signed by the issuer key of the attack kit with `cnf.jkt`. Each row runs through both doors
 * (the Shield guard and the passport strategy) and must end in a 401 with a `DPoP` challenge.
 * Replicas: two app instances share one real redis-server as their replay store, so a proof used
 * on one is refused by the other; once Redis is stopped, requests are refused (503), never let in.
 *
 * passport keeps its strategies in one process-wide registry: of two apps in one process, the
 * passport door of both would run the strategy of the app started last. So replica B serves both
 * paths through its guard (no passport module), and replica A has both doors. The nonce rows have
 * their own app, in dpop-nonce.attack.spec.ts.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { RedisDpopReplayStore } from '@inference-shield/identity';
import { AUDIENCE, ISSUER, issuerKey, type IssuerKey } from './attack-kit.js';
import {
  DpopClient,
  PUBLIC_ORIGIN,
  type DpopCallResult,
  type ProofTamper,
} from '../../identity/support/dpop-client.js';
import { DOORS, DPOP_ROUTES, dpopFixtureModule, type Door } from '../../identity/support/dpop-fixture.js';
import { CaptureLogger, startApp, type TestApp } from '../../support/harness.js';
import { startRedis, type RunningRedis } from '../../support/redis-server.js';

const ALGS = 'algs="ES256 EdDSA Ed25519 PS256 RS256"';

const dir = mkdtempSync(join(tmpdir(), 'attack-dpop-'));
const logger = new CaptureLogger();
const sent: string[] = [];
let pki: TestPki;
let key: IssuerKey;
let redis: RunningRedis;
const clients: Redis[] = [];
let replicaA: TestApp;
let replicaB: TestApp;
let client: DpopClient;
let token: string;

const oidc = (jwk: IssuerKey['jwk']) => ({
  issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [jwk] }, algorithms: ['ES256'] }],
});

function replica(redisClient: Redis, passport: boolean) {
  return dpopFixtureModule(
    {
      oidc: oidc(key.jwk),
      dpop: {
        origin: PUBLIC_ORIGIN,
        replayStore: new RedisDpopReplayStore(redisClient, { commandTimeoutMs: 500 }),
      },
    },
    { passport },
  );
}

function track(r: DpopCallResult): DpopCallResult {
  sent.push(r.proof, r.authorization);
  return r;
}

/** One request from `who` (default the token's owner) to a door of `app`, its proof tampered with. */
async function send(app: TestApp, door: Door, tamper?: ProofTamper, who = client, accessToken = token) {
  return track(await who.call(app.port, app.ca, DPOP_ROUTES[door], accessToken, tamper ? { tamper } : {}));
}

function expectDpopRefusal(
  r: { status: number; body: Record<string, unknown>; challenge: string | null },
  code: string,
) {
  expect({ status: r.status, code: r.body['code'] }).toEqual({ status: 401, code });
  expect(r.challenge).toMatch(/(^|, )DPoP /);
  expect(r.challenge).toContain(ALGS);
}

const challengeOf = (r: DpopCallResult) => ({ ...r, challenge: r.headers.get('www-authenticate') });

beforeAll(async () => {
  [pki, key, redis] = await Promise.all([createTestPki(dir), issuerKey('k1'), startRedis()]);
  client = await DpopClient.create();
  token = await key.sign({ cnf: { jkt: client.jkt } });
  sent.push(token);
  const [a, b] = [redis.client(), redis.client()];
  for (const c of [a, b]) c.on('error', () => undefined); // once Redis is stopped, on purpose
  clients.push(a, b);
  [replicaA, replicaB] = await Promise.all([
    startApp(replica(a, true), { pki, logger }),
    startApp(replica(b, false), { pki }),
  ]);
});

afterAll(async () => {
  await Promise.all([replicaA, replicaB].map((app) => app?.close()));
  for (const c of clients) c.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(DOORS)('DPoP attack rows through the %s door', (door) => {
  it('control: an honest proof → 200 with the key thumbprint', async () => {
    const r = await send(replicaA, door);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ subject: 'alice', route: door });
    expect(r.body['dpopKeyThumbprint']).toBe(client.jkt);
  });

  it('a replayed proof (same replica) → 401 ERR_DPOP_PROOF_REPLAYED', async () => {
    const first = await send(replicaA, door);
    expect(first.status).toBe(200);
    const again = await replicaA.call(DPOP_ROUTES[door], {
      method: 'POST',
      json: {},
      authorization: first.authorization,
      headers: { dpop: first.proof },
    });
    expectDpopRefusal(
      { ...again, challenge: String(again.headers['www-authenticate']) },
      'ERR_DPOP_PROOF_REPLAYED',
    );
    expect(again.headers['www-authenticate']).toContain('DPoP error="invalid_dpop_proof"');
  });

  const rows: [string, ProofTamper, string][] = [
    ['wrong htm (GET for a POST)', (_h, p) => void (p['htm'] = 'GET'), 'ERR_DPOP_PROOF_REQUEST_MISMATCH'],
    [
      'wrong htu (another path)',
      (_h, p) => void (p['htu'] = `${PUBLIC_ORIGIN}/v1/models/other/infer`),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'wrong htu (another origin)',
      (_h, p) => void (p['htu'] = `https://evil.example${DPOP_ROUTES[door]}`),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'stale iat (2 minutes old)',
      (_h, p) => void (p['iat'] = Number(p['iat']) - 120),
      'ERR_DPOP_PROOF_EXPIRED',
    ],
    [
      'future iat (2 minutes ahead)',
      (_h, p) => void (p['iat'] = Number(p['iat']) + 120),
      'ERR_DPOP_PROOF_EXPIRED',
    ],
    [
      'ath of another token',
      (_h, p) => void (p['ath'] = createHash('sha256').update('other').digest('base64url')),
      'ERR_DPOP_BINDING_MISMATCH',
    ],
    ['no ath', (_h, p) => void delete p['ath'], 'ERR_DPOP_PROOF_INVALID'],
    ['typ JWT', (h) => void (h['typ'] = 'JWT'), 'ERR_DPOP_PROOF_INVALID'],
    [
      'a jku header pointing elsewhere',
      (h) => void (h['jku'] = 'https://evil.example/jwks'),
      'ERR_DPOP_PROOF_INVALID',
    ],
  ];
  it.each(rows)('%s → 401 %s', async (_name, tamper, code) => {
    expectDpopRefusal(challengeOf(await send(replicaA, door, tamper)), code);
  });

  it('htu built from the Host the client connected to, not our origin → 401 (Host is never trusted)', async () => {
    const r = await send(
      replicaA,
      door,
      (_h, p) => void (p['htu'] = `https://localhost:${replicaA.port}${DPOP_ROUTES[door]}`),
    );
    expectDpopRefusal(challengeOf(r), 'ERR_DPOP_PROOF_REQUEST_MISMATCH');
    // A Host header naming the attacker's origin does not make the attacker's htu ours.
    const evil = await send(
      replicaA,
      door,
      (_h, p) => void (p['htu'] = `https://evil.example${DPOP_ROUTES[door]}`),
    );
    expect(evil.body['code']).toBe('ERR_DPOP_PROOF_REQUEST_MISMATCH');
    const withHost = await replicaA.call(DPOP_ROUTES[door], {
      method: 'POST',
      json: {},
      authorization: `DPoP ${token}`,
      headers: {
        dpop: await client.proof('POST', DPOP_ROUTES[door], token),
        host: 'evil.example',
      },
    });
    // An honest proof names our origin: accepted whatever Host says (Host is not read at all).
    expect(withHost.status).toBe(200);
  });

  it('a proof key that is not the token cnf.jkt (a stolen token, the thief own key) → 401 ERR_DPOP_BINDING_MISMATCH', async () => {
    const thief = await DpopClient.create();
    expectDpopRefusal(challengeOf(await send(replicaA, door, undefined, thief)), 'ERR_DPOP_BINDING_MISMATCH');
  });

  it('a proof carrying the private key in its jwk header → 401 ERR_DPOP_PROOF_INVALID', async () => {
    const privateJwk = await exportJWK(client.keyPair.privateKey);
    expect(privateJwk.d).toBeDefined();
    const r = await send(replicaA, door, (h) => void (h['jwk'] = privateJwk));
    expectDpopRefusal(challengeOf(r), 'ERR_DPOP_PROOF_INVALID');
    expect(r.text).not.toContain(String(privateJwk.d));
  });

  it('the DPoP-bound token sent as Bearer → 401 ERR_DPOP_TOKEN_AS_BEARER', async () => {
    const r = await replicaA.call(DPOP_ROUTES[door], { method: 'POST', json: {}, token });
    expectDpopRefusal({ ...r, challenge: String(r.headers['www-authenticate']) }, 'ERR_DPOP_TOKEN_AS_BEARER');
  });

  it('the DPoP-bound token with the DPoP scheme and no proof → 401 ERR_DPOP_PROOF_MISSING', async () => {
    const r = await replicaA.call(DPOP_ROUTES[door], {
      method: 'POST',
      json: {},
      authorization: `DPoP ${token}`,
    });
    expectDpopRefusal({ ...r, challenge: String(r.headers['www-authenticate']) }, 'ERR_DPOP_PROOF_MISSING');
  });

  it('two DPoP headers (each a valid proof) → 401 ERR_DPOP_PROOF_INVALID', async () => {
    const [p1, p2] = await Promise.all([
      client.proof('POST', DPOP_ROUTES[door], token),
      client.proof('POST', DPOP_ROUTES[door], token),
    ]);
    const r = await replicaA.call(DPOP_ROUTES[door], {
      method: 'POST',
      json: {},
      authorization: `DPoP ${token}`,
      headers: { dpop: [p1, p2] },
    });
    expectDpopRefusal({ ...r, challenge: String(r.headers['www-authenticate']) }, 'ERR_DPOP_PROOF_INVALID');
  });

  it('an oversized proof (8 KB) → 401 ERR_DPOP_PROOF_INVALID, before any parsing', async () => {
    const r = await replicaA.call(DPOP_ROUTES[door], {
      method: 'POST',
      json: {},
      authorization: `DPoP ${token}`,
      headers: { dpop: `${'a'.repeat(8192)}.b.c` },
    });
    expectDpopRefusal({ ...r, challenge: String(r.headers['www-authenticate']) }, 'ERR_DPOP_PROOF_INVALID');
  });

  it('an unbound token presented with the DPoP scheme and a valid proof → 401 ERR_DPOP_BINDING_MISMATCH', async () => {
    const unbound = await key.sign({});
    sent.push(unbound);
    expectDpopRefusal(
      challengeOf(await send(replicaA, door, undefined, client, unbound)),
      'ERR_DPOP_BINDING_MISMATCH',
    );
  });
});

describe.each(DOORS)('replicas sharing one Redis replay store, replica A through the %s door', (door) => {
  const path = DPOP_ROUTES[door];
  const replay = (app: TestApp, r: DpopCallResult) =>
    app.call(path, { method: 'POST', json: {}, authorization: r.authorization, headers: { dpop: r.proof } });
  const refused = (r: { status: number; body: Record<string, unknown>; headers: Record<string, unknown> }) =>
    expectDpopRefusal({ ...r, challenge: String(r.headers['www-authenticate']) }, 'ERR_DPOP_PROOF_REPLAYED');

  it('a proof used on replica A is refused by replica B', async () => {
    const first = await send(replicaA, door);
    expect(first.status).toBe(200);
    refused(await replay(replicaB, first));
  });

  it('a proof used on replica B is refused by replica A', async () => {
    const first = await send(replicaB, door);
    expect(first.status).toBe(200);
    refused(await replay(replicaA, first));
  });

  it('one fresh proof sent to both replicas at the same instant is accepted once', async () => {
    const proof = await client.proof('POST', path, token);
    const both = await Promise.all(
      [replicaA, replicaB].map((app) =>
        app.call(path, {
          method: 'POST',
          json: {},
          authorization: `DPoP ${token}`,
          headers: { dpop: proof },
        }),
      ),
    );
    expect(both.map((r) => r.status).sort()).toEqual([200, 401]);
    expect(both.find((r) => r.status === 401)?.body['code']).toBe('ERR_DPOP_PROOF_REPLAYED');
  });
});

describe('Redis stops (last: the replicas lose their replay store)', () => {
  it.each(DOORS)('%s door: 503 ERR_DPOP_REPLAY_STORE_UNAVAILABLE, never an open door', async (door) => {
    await redis.stop();
    const r = await send(replicaA, door);
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 503,
      code: 'ERR_DPOP_REPLAY_STORE_UNAVAILABLE',
    });
    const onB = await send(replicaB, door);
    expect(onB.status).toBe(503);
  });
});

describe('logs', () => {
  it('no token and no proof in any log line of the replica', () => {
    const needles = sent
      .filter((s) => s.length > 40)
      .flatMap((s) => {
        const sig = s.split('.')[2] ?? s;
        return [sig.slice(0, 16), sig.slice(-16)];
      });
    expect(needles.length).toBeGreaterThan(20);
    for (const line of logger.lines) for (const n of needles) expect(line).not.toContain(n);
  });
});
