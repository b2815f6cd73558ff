/**
 * DPoP (RFC 9449) end to end: a real DPoP client (oauth4webapi's `DPoP()` handle) obtains a
 * DPoP-bound token from the real dev IdP (oidc-provider, `features.dPoP`) and calls the guarded
 * app with it, through both doors (the Shield guard and the passport strategy), over real HTTPS.
 * The app is configured with a public origin (`dpop.origin`), which the proofs' `htu` names.
 * Logs and audit events are searched for tokens and proofs at the end.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_VERIFIER, type TokenVerifier } from '@inference-shield/identity/internal';
import { CaptureAuditSink, TokenLedger } from './support/capture.js';
import { startIdp, type RunningIdp } from './support/dev-idp.js';
import { DpopClient, PUBLIC_ORIGIN, routedFetch } from './support/dpop-client.js';
import { DOORS, DPOP_ROUTES, dpopFixtureModule, type Door } from './support/dpop-fixture.js';
import { createSharedPki, type SharedPki } from './support/idp-pki.js';
import { CaptureLogger, startApp, type TestApp } from '../support/harness.js';

const AUDIENCE = 'https://models.shield.test';
const DEMO_SECRET = 'dev-only-demo-service-secret-not-for-production';

const root = mkdtempSync(join(tmpdir(), 'dpop-e2e-'));
const logger = new CaptureLogger();
const audit = new CaptureAuditSink();
const ledger = new TokenLedger();
const proofs: string[] = [];

let shared: SharedPki;
let idp: RunningIdp;
let app: TestApp;
let client: DpopClient;
let token: string;

/** A client_credentials token from the dev IdP, requested with a DPoP proof by `who`. */
async function dpopToken(who: DpopClient): Promise<{ accessToken: string; tokenType: string }> {
  const issuer = new URL(idp.idp.issuer);
  const customFetch = routedFetch(idp.idp.caPem, 0);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { [oauth.customFetch]: customFetch }),
  );
  const response = await oauth.clientCredentialsGrantRequest(
    as,
    who.client,
    oauth.ClientSecretBasic(DEMO_SECRET),
    new URLSearchParams({ scope: 'models:infer' }),
    { DPoP: who.handle, [oauth.customFetch]: customFetch },
  );
  const result = await oauth.processClientCredentialsResponse(as, who.client, response);
  return { accessToken: ledger.add(result.access_token), tokenType: result.token_type };
}

const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

const pathOf = (door: Door): string => DPOP_ROUTES[door];

async function dpopCall(door: Door | 'sender', accessToken = token, who = client, body?: string) {
  const r = await who.call(
    app.port,
    app.ca,
    DPOP_ROUTES[door],
    accessToken,
    body === undefined ? {} : { body },
  );
  proofs.push(r.proof);
  return r;
}

beforeAll(async () => {
  shared = await createSharedPki(root);
  idp = await startIdp(root, 'idp', shared, { audience: AUDIENCE });
  app = await startApp(
    dpopFixtureModule({
      oidc: {
        issuers: [
          {
            issuer: idp.idp.issuer,
            audience: AUDIENCE,
            ca: { pem: idp.idp.caPem },
            requireAccessTokenType: true,
          },
        ],
      },
      dpop: { origin: PUBLIC_ORIGIN },
      audit: { sink: audit },
    }),
    { pki: shared.pki, logger },
  );
  client = await DpopClient.create('demo-service');
  ({ accessToken: token } = await dpopToken(client));
});

afterAll(async () => {
  await app?.close();
  await idp?.idp.close();
  rmSync(root, { recursive: true, force: true });
});

describe('the dev IdP issues DPoP-bound tokens', () => {
  it('token_type DPoP, cnf.jkt = the client key thumbprint', async () => {
    const other = await DpopClient.create('demo-service');
    const { accessToken, tokenType } = await dpopToken(other);
    expect(tokenType.toLowerCase()).toBe('dpop');
    expect(claimsOf(accessToken)['cnf']).toEqual({ jkt: other.jkt });
    expect(claimsOf(token)['cnf']).toEqual({ jkt: client.jkt });
  });
});

describe.each(DOORS)('through the %s door', (door) => {
  it('a DPoP-bound token with a fresh proof → 200, the principal carries the proof key thumbprint', async () => {
    const r = await dpopCall(door);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ subject: 'demo-service', route: door, dpopKeyThumbprint: client.jkt });
    expect(r.authorization.startsWith('DPoP ')).toBe(true);
    // No nonces configured: none handed out.
    expect(r.headers.get('dpop-nonce')).toBeNull();
  });

  it('the same token sent as Bearer → 401 ERR_DPOP_TOKEN_AS_BEARER with a DPoP challenge', async () => {
    const r = await app.call(pathOf(door), { method: 'POST', json: {}, token });
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_TOKEN_AS_BEARER',
    });
    expect(r.headers['www-authenticate']).toBe(
      'Bearer, DPoP error="invalid_token", error_description="ERR_DPOP_TOKEN_AS_BEARER", algs="ES256 EdDSA Ed25519 PS256 RS256"',
    );
    expect(r.text).not.toContain(token.slice(-20));
  });

  it('the token with a proof signed by another key → 401 ERR_DPOP_BINDING_MISMATCH', async () => {
    const thief = await DpopClient.create('demo-service');
    const r = await dpopCall(door, token, thief);
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_BINDING_MISMATCH',
    });
    expect(r.headers.get('www-authenticate')).toContain('DPoP error="invalid_dpop_proof"');
  });

  it('a cached token verification still needs a fresh proof: each proof once, a replay is refused', async () => {
    const verifier = app.app.get<TokenVerifier>(TOKEN_VERIFIER);
    const hits = verifier.stats().cacheHits;
    const first = await dpopCall(door);
    const second = await dpopCall(door);
    expect([first.status, second.status]).toEqual([200, 200]);
    // The token was verified from the cache: the proofs were checked all the same.
    expect(verifier.stats().cacheHits).toBeGreaterThan(hits);
    const replay = await app.call(pathOf(door), {
      method: 'POST',
      json: {},
      authorization: first.authorization,
      headers: { dpop: first.proof },
    });
    expect({ status: replay.status, code: replay.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_PROOF_REPLAYED',
    });
  });

  it('on one keep-alive connection (the verifier recalls the token), the proof is still checked each time', async () => {
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: app.ca });
    const verifier = app.app.get<TokenVerifier>(TOKEN_VERIFIER);
    const memoHits = verifier.stats().connectionMemoHits;
    try {
      const first = await dpopCall(door);
      const send = (proof: string) =>
        app.call(pathOf(door), {
          method: 'POST',
          json: {},
          authorization: first.authorization,
          headers: { dpop: proof },
          agent,
        });
      const fresh = await client.call(app.port, app.ca, pathOf(door), token);
      // `fresh` was sent on its own connection and used; now on the kept connection:
      const again = await send(fresh.proof);
      expect(again.body['code']).toBe('ERR_DPOP_PROOF_REPLAYED');
      const second = await send(first.proof);
      expect(second.body['code']).toBe('ERR_DPOP_PROOF_REPLAYED');
      // The same connection and header with a new proof: recalled token, fresh proof → 200.
      const third = await send(await client.proof('POST', pathOf(door), token));
      expect(third.status).toBe(200);
      expect(third.body['dpopKeyThumbprint']).toBe(client.jkt);
      // The connection is kept after a 200 (an early 401 closes it): the next two requests find
      // the token in the connection's memo, and each proof is still checked: a new one passes,
      // the same one again is a replay.
      const fourthProof = await client.proof('POST', pathOf(door), token);
      expect((await send(fourthProof)).status).toBe(200);
      expect((await send(fourthProof)).body['code']).toBe('ERR_DPOP_PROOF_REPLAYED');
      expect(verifier.stats().connectionMemoHits).toBeGreaterThanOrEqual(memoHits + 2);
    } finally {
      agent.destroy();
    }
  });

  it('a request announcing a body is decided on its headers: a bad proof is refused early, a good one counted once', async () => {
    const body = JSON.stringify({ input: 'x'.repeat(20_000) });
    const thief = await DpopClient.create('demo-service');
    const bad = await dpopCall(door, token, thief, body);
    expect({ status: bad.status, code: bad.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_BINDING_MISMATCH',
    });
    // The early check and the guard decide the same request: one proof, not a replay of itself.
    const good = await dpopCall(door, token, client, body);
    expect(good.status).toBe(200);
  });

  it('a plain bearer token from the same IdP keeps working (no DPoP needed for an unbound token)', async () => {
    const bearer = ledger.add(await idp.idp.getToken({ scope: 'models:infer' }));
    expect(claimsOf(bearer)['cnf']).toBeUndefined();
    const r = await app.call(pathOf(door), { method: 'POST', json: {}, token: bearer });
    expect(r.status).toBe(200);
    expect(r.body['dpopKeyThumbprint']).toBeNull();
  });
});

describe('a route that requires sender-constrained tokens (@RequireSenderConstrained)', () => {
  it('a plain bearer token → 401 ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED, with a DPoP challenge', async () => {
    const bearer = ledger.add(await idp.idp.getToken({ scope: 'models:infer' }));
    const r = await app.call(DPOP_ROUTES.sender, { method: 'POST', json: {}, token: bearer });
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED',
    });
    expect(r.headers['www-authenticate']).toContain(
      'DPoP error="invalid_token", error_description="ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED", algs="',
    );
  });

  it('a DPoP-bound token with its proof → 200', async () => {
    const r = await dpopCall('sender');
    expect(r.status).toBe(200);
    expect(r.body['dpopKeyThumbprint']).toBe(client.jkt);
  });
});

describe('on the Fastify adapter (guard door; passport stays with the Express app of this process)', () => {
  let fastify: TestApp;
  beforeAll(async () => {
    fastify = await startApp(
      dpopFixtureModule(
        {
          oidc: { issuers: [{ issuer: idp.idp.issuer, audience: AUDIENCE, ca: { pem: idp.idp.caPem } }] },
          dpop: { origin: PUBLIC_ORIGIN },
          audit: { sink: audit },
        },
        { passport: false },
      ),
      { pki: shared.pki, logger, adapter: 'fastify' },
    );
  });
  afterAll(async () => {
    await fastify?.close();
  });

  it('a fresh proof → 200; the same proof again → 401 ERR_DPOP_PROOF_REPLAYED', async () => {
    const first = await client.call(fastify.port, fastify.ca, DPOP_ROUTES.guard, token);
    proofs.push(first.proof);
    expect(first.status).toBe(200);
    expect(first.body['dpopKeyThumbprint']).toBe(client.jkt);
    const again = await fastify.call(DPOP_ROUTES.guard, {
      method: 'POST',
      json: {},
      authorization: first.authorization,
      headers: { dpop: first.proof },
    });
    expect({ status: again.status, code: again.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_PROOF_REPLAYED',
    });
  });

  it('a request announcing a body: refused early with a bad proof, accepted once with a good one', async () => {
    const body = JSON.stringify({ input: 'x'.repeat(20_000) });
    const thief = await DpopClient.create('demo-service');
    const bad = await thief.call(fastify.port, fastify.ca, DPOP_ROUTES.guard, token, { body });
    expect({ status: bad.status, code: bad.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_BINDING_MISMATCH',
    });
    const good = await client.call(fastify.port, fastify.ca, DPOP_ROUTES.guard, token, { body });
    proofs.push(bad.proof, good.proof);
    expect(good.status).toBe(200);
  });
});

describe('nothing sensitive is logged', () => {
  it('no token, no proof in any log line or audit event', () => {
    const lines = [...logger.lines, ...audit.lines];
    expect(audit.events.length).toBeGreaterThan(10);
    expect(ledger.leaks(lines)).toEqual([]);
    const pieces = proofs.filter((p) => p.length > 0).map((p) => p.split('.')[2]?.slice(0, 16) ?? '');
    expect(pieces.length).toBeGreaterThan(5);
    for (const piece of pieces) for (const line of lines) expect(line).not.toContain(piece);
    // The DPoP refusals are audited by code.
    expect(audit.events.some((e) => e.decision === 'deny' && e.code === 'ERR_DPOP_PROOF_REPLAYED')).toBe(
      true,
    );
  });
});
