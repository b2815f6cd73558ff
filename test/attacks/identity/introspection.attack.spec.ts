/**
 * Attacks on and faults of RFC 7662 introspection (THREATS.md: "opaque token while the IdP's
 * introspection endpoint is down → 503, never an open door"). The app introspects opaque tokens
 * at an endpoint this spec controls, which hangs, fails, redirects, lies or floods; a request is
 * never a 200 unless a well-formed answer says the token is active and ours. Plus the attacker's
 * side: random opaque tokens (bounded concurrency), oversized tokens (refused before any call),
 * JWT-shaped garbage (never sent to the IdP).
 */
import 'reflect-metadata';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { TOKEN_VERIFIER, type TokenVerifier } from '@inference-shield/identity/internal';
import { fixtureModule, ROUTES } from '../../identity/support/fixture-app.js';
import { CaptureLogger, startApp, testPki, type CallResult, type TestApp } from '../../support/harness.js';
import { AUDIENCE, ISSUER, issuerKey } from './attack-kit.js';

type Mode = (req: IncomingMessage, res: ServerResponse) => void;

const logger = new CaptureLogger();
let pki: TestPki;
let endpoint: Server;
let witness: Server;
let witnessConnections = 0;
let mode: Mode = () => undefined;
let requestsSeen = 0;
const sockets = new Set<Socket>();
let app: TestApp;
let verifier: TokenVerifier;

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const nowS = (): number => Math.floor(Date.now() / 1000);
let counter = 0;
/** A fresh opaque token each time (nothing cached from an earlier row). */
const opaque = (): string => `opaque${++counter}${'x'.repeat(32)}`;
const calls = (): number => verifier.stats().introspection?.calls ?? -1;

function post(token: string): Promise<CallResult> {
  return app.call(ROUTES.infer, { method: 'POST', token });
}

function expectUnavailable(r: CallResult, token: string): void {
  expect({ status: r.status, code: r.body['code'] }).toEqual({
    status: 503,
    code: 'ERR_INTROSPECTION_UNAVAILABLE',
  });
  expect(r.text).not.toContain(token);
}

beforeAll(async () => {
  pki = await testPki('introspection-attack');
  const tls = { cert: pki.server.certPem, key: pki.server.keyPem };
  endpoint = createServer(tls, (req, res) => {
    requestsSeen++;
    // Read the form, then act as the row says.
    req.resume();
    req.on('end', () => mode(req, res));
  });
  endpoint.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  witness = createServer(tls, (_req, res) => res.end('{}'));
  witness.on('connection', () => witnessConnections++);
  await Promise.all([
    new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve)),
    new Promise<void>((resolve) => witness.listen(0, '127.0.0.1', resolve)),
  ]);
  const key = await issuerKey('k1');
  const rsKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  app = await startApp(
    fixtureModule({
      oidc: {
        issuers: [
          {
            issuer: ISSUER,
            audience: AUDIENCE,
            jwks: { keys: [key.jwk] },
            introspection: {
              endpoint: `https://localhost:${(endpoint.address() as AddressInfo).port}/introspect`,
              clientId: 'rs',
              clientAuth: { method: 'private_key_jwt', key: { pem: String(rsKey) } },
              ca: { pem: pki.ca.certPem },
              timeoutMs: 500,
              maxConcurrent: 4,
            },
          },
        ],
        opaqueTokenIssuer: ISSUER,
      },
      mtls: {},
    }),
    { pki, logger },
  );
  verifier = app.app.get<TokenVerifier>(TOKEN_VERIFIER);
});

afterAll(async () => {
  await app?.close();
  for (const s of sockets) s.destroy();
  await Promise.all([
    new Promise((resolve) => endpoint?.close(resolve)),
    new Promise((resolve) => witness?.close(resolve)),
  ]);
});

beforeEach(() => {
  mode = (_req, res) =>
    json(res, 200, {
      active: true,
      iss: ISSUER,
      aud: AUDIENCE,
      exp: nowS() + 60,
      sub: 'alice',
      scope: 'models:infer',
    });
});

describe('the introspection endpoint fails: 503, never an open door', () => {
  it('a control row: a well-formed active answer for us is accepted', async () => {
    expect((await post(opaque())).status).toBe(200);
  });

  it.each<[string, Mode]>([
    ['hangs (accepts, never answers)', () => undefined],
    ['answers 500', (_req, res) => json(res, 500, { active: true, aud: AUDIENCE })],
    ['answers 503 with an active-looking body', (_req, res) => json(res, 503, { active: true })],
    [
      'answers 401 (refuses our client authentication)',
      (_req, res) => json(res, 401, { error: 'invalid_client' }),
    ],
    [
      'answers HTML',
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>active</html>');
      },
    ],
    [
      'answers truncated JSON',
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"active":true,');
      },
    ],
    [
      'answers a body of 1 MB',
      (_req, res) => json(res, 200, { active: true, aud: AUDIENCE, pad: 'x'.repeat(1 << 20) }),
    ],
    [
      'answers active twice (duplicate member)',
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`{"active":false,"active":true,"aud":"${AUDIENCE}","exp":${nowS() + 60},"sub":"alice"}`);
      },
    ],
    ['resets the connection', (req) => req.socket.destroy()],
  ])('%s', async (_name, failing) => {
    mode = failing;
    const token = opaque();
    expectUnavailable(await post(token), token);
  });

  it('redirects elsewhere: not followed (no connection to the target), 503', async () => {
    const before = witnessConnections;
    mode = (_req, res) => {
      res.writeHead(307, {
        location: `https://localhost:${(witness.address() as AddressInfo).port}/introspect`,
      });
      res.end();
    };
    const token = opaque();
    expectUnavailable(await post(token), token);
    expect(witnessConnections).toBe(before);
  });
});

describe('the endpoint answers, but not for us: 401', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['active with nothing else (no exp, no aud)', { active: true }, 'ERR_TOKEN_CLAIM_INVALID'],
    ['active for another audience', { aud: 'https://other.example' }, 'ERR_TOKEN_AUDIENCE_INVALID'],
    ['active without aud', { aud: undefined }, 'ERR_TOKEN_AUDIENCE_INVALID'],
    ['active, from another issuer', { iss: 'https://evil.example' }, 'ERR_TOKEN_ISSUER_UNKNOWN'],
    ['active but expired', { exp: 1_000 }, 'ERR_TOKEN_EXPIRED'],
    [
      'bound to a DPoP key, where the app has no dpop option',
      { cnf: { jkt: 'A'.repeat(43) } },
      'ERR_TOKEN_CLAIM_INVALID',
    ],
    [
      'bound to a certificate this connection lacks',
      { cnf: { 'x5t#S256': 'A'.repeat(43) } },
      'ERR_TOKEN_BINDING_MISMATCH',
    ],
    ['inactive', { active: false }, 'ERR_TOKEN_INACTIVE'],
  ])('%s → %s', async (_name, patch, code) => {
    const base = {
      active: true,
      iss: ISSUER,
      aud: AUDIENCE,
      exp: nowS() + 60,
      sub: 'alice',
      scope: 'models:infer',
    };
    const answer =
      patch['active'] === true && Object.keys(patch).length === 1 ? patch : { ...base, ...patch };
    mode = (_req, res) => json(res, 200, answer);
    const r = await post(opaque());
    expect({ status: r.status, code: r.body['code'] }).toEqual({ status: 401, code });
  });
});

describe("the attacker's tokens", () => {
  it('a flood of random opaque tokens while the IdP hangs: all 503, at most maxConcurrent calls in flight', async () => {
    mode = () => undefined;
    const seenBefore = requestsSeen;
    const results = await Promise.all(Array.from({ length: 20 }, () => post(opaque())));
    expect(results.every((r) => r.status === 503 && r.body['code'] === 'ERR_INTROSPECTION_UNAVAILABLE')).toBe(
      true,
    );
    // maxConcurrent is 4: the others were refused without a call. Each call ends within timeoutMs,
    // so a few waves may have run; far fewer than 20.
    expect(requestsSeen - seenBefore).toBeLessThan(20);
  });

  it('an oversized opaque token is refused before any introspection call', async () => {
    const before = calls();
    const r = await app.call(ROUTES.infer, { method: 'POST', token: 'A'.repeat(8193) });
    expect({ status: r.status, code: r.body['code'] }).toEqual({ status: 401, code: 'ERR_TOKEN_TOO_LARGE' });
    expect(calls()).toBe(before);
  });

  it.each(['a.b.c', 'eyJhbGciOiJub25lIn0.e30.', 'a.b.c.d.e'])(
    'JWT-shaped %s is never sent to the IdP',
    async (token) => {
      const before = calls();
      const r = await post(token);
      expect(r.status).toBe(401);
      expect(calls()).toBe(before);
    },
  );

  it('no token is logged', () => {
    for (const line of logger.lines) expect(line).not.toMatch(/opaque\d+x{32}/);
  });
});
