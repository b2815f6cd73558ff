/**
 * RFC 7662 end to end: opaque access tokens issued by the real dev IdP (oidc-provider, opaque
 * resources) and checked through its introspection endpoint, by a resource server that
 * authenticates with `private_key_jwt` (both doors: the Shield guard and passport). JWTs of the
 * same IdP keep being verified locally (routed by `iss`). Revoked and expired tokens are 401,
 * concurrent requests share one call, answers are reused no longer than `exp`, and an IdP that
 * cannot be reached is a 503, never a 200. Nothing sensitive is logged.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TOKEN_VERIFIER, type TokenVerifier } from '@inference-shield/identity/internal';
import { CaptureAuditSink } from './support/capture.js';
import { fixtureModule, ROUTES } from './support/fixture-app.js';
import { createSharedPki, type SharedPki } from './support/idp-pki.js';
import { RESOURCES, startIntrospectionIdp, type IntrospectionIdp } from './support/introspection-idp.js';
import {
  CaptureLogger,
  startApp,
  type CallResult,
  type ClientCertificate,
  type TestApp,
} from '../support/harness.js';

const root = mkdtempSync(join(tmpdir(), 'introspection-e2e-'));
const logger = new CaptureLogger();
const audit = new CaptureAuditSink();
const consoleLines: string[] = [];
const tokens = new Set<string>();

let shared: SharedPki;
let idp: IntrospectionIdp;
let app: TestApp;
let verifier: TokenVerifier;

type Door = 'guard' | 'passport';
const DOORS: readonly Door[] = ['guard', 'passport'];
const routeOf = (door: Door): string => (door === 'guard' ? ROUTES.infer : ROUTES.passportInfer);

const introspectionCalls = (): number => verifier.stats().introspection?.calls ?? -1;

async function opaque(resource: string, opts: { bound?: boolean; scope?: string } = {}): Promise<string> {
  const token = await idp.opaqueToken(resource, opts);
  tokens.add(token);
  return token;
}

function post(path: string, opts: { token?: string; client?: ClientCertificate } = {}): Promise<CallResult> {
  return app.call(path, { method: 'POST', ...opts });
}

function expectRefused(r: CallResult, status: number, code: string): void {
  expect({ status: r.status, code: r.body['code'] }).toEqual({ status, code });
}

beforeAll(async () => {
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      consoleLines.push(args.map(String).join(' '));
    });
  }
  shared = await createSharedPki(root);
  idp = await startIntrospectionIdp(root, 'idp', shared);
  app = await startApp(
    fixtureModule(
      {
        oidc: {
          issuers: [
            {
              issuer: idp.idp.issuer,
              // RFC 8707: the resource identifier stated as such; JWTs of the same IdP for RESOURCES.jwt.
              resource: RESOURCES.opaque,
              audience: [RESOURCES.jwt, RESOURCES.short],
              ca: { pem: idp.idp.caPem },
              introspection: {
                endpoint: idp.endpoint,
                clientId: 'rs-pkjwt',
                clientAuth: { method: 'private_key_jwt', key: { file: idp.rsPrivateKeyFile } },
                timeoutMs: 2000,
                maxCacheSeconds: 60,
              },
            },
          ],
          opaqueTokenIssuer: idp.idp.issuer,
        },
        mtls: { trustDomains: ['shield.local'] },
        audit: { sink: audit },
      },
      { passport: true },
    ),
    { pki: shared.pki, mtls: 'optional', logger },
  );
  verifier = app.app.get<TokenVerifier>(TOKEN_VERIFIER);
});

afterAll(async () => {
  await app?.close();
  await idp?.close().catch(() => undefined);
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe.each(DOORS)('opaque tokens through the %s', (door) => {
  it('an opaque token of this service is accepted, its principal from the introspection answer', async () => {
    const token = await opaque(RESOURCES.opaque, { scope: 'models:infer models:read' });
    expect(token).not.toContain('.');
    const r = await post(routeOf(door), { token });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      method: 'oidc',
      issuer: idp.idp.issuer,
      // A client-credentials token: its principal is the client (RFC 9068 §2.2).
      subject: 'demo-opaque',
      scopes: expect.arrayContaining(['models:infer', 'models:read']),
    });
  });

  it('a revoked opaque token is 401 ERR_TOKEN_INACTIVE', async () => {
    const token = await opaque(RESOURCES.opaque);
    await idp.revoke(token);
    const r = await post(routeOf(door), { token });
    expectRefused(r, 401, 'ERR_TOKEN_INACTIVE');
    expect(r.headers['www-authenticate']).toBe(
      'Bearer error="invalid_token", error_description="ERR_TOKEN_INACTIVE"',
    );
  });

  it('an opaque token the IdP never issued is 401 ERR_TOKEN_INACTIVE', async () => {
    const forged = 'A'.repeat(43);
    tokens.add(forged);
    expectRefused(await post(routeOf(door), { token: forged }), 401, 'ERR_TOKEN_INACTIVE');
  });

  it('an active opaque token for another resource server is 401 ERR_TOKEN_AUDIENCE_INVALID', async () => {
    const token = await opaque(RESOURCES.other);
    expectRefused(await post(routeOf(door), { token }), 401, 'ERR_TOKEN_AUDIENCE_INVALID');
  });

  it('an opaque token without the route scope is 403 ERR_INSUFFICIENT_SCOPE', async () => {
    const token = await opaque(RESOURCES.opaque, { scope: 'models:read' });
    expectRefused(await post(routeOf(door), { token }), 403, 'ERR_INSUFFICIENT_SCOPE');
  });

  it('a JWT of the same IdP is still verified locally, routed by its iss (no introspection call)', async () => {
    const jwt = await idp.idp.getToken({
      clientId: 'demo-opaque',
      scope: 'models:infer',
      resource: RESOURCES.jwt,
    });
    tokens.add(jwt);
    const before = introspectionCalls();
    const r = await post(routeOf(door), { token: jwt });
    expect(r.status).toBe(200);
    expect(introspectionCalls()).toBe(before);
  });

  it('an oversized opaque token is refused before any introspection call', async () => {
    const before = introspectionCalls();
    const r = await post(routeOf(door), { token: 'A'.repeat(9000) });
    expect([401, 431]).toContain(r.status);
    expect(introspectionCalls()).toBe(before);
  });
});

describe('certificate-bound opaque tokens (RFC 8705 cnf in the introspection answer)', () => {
  it('is accepted with the certificate it is bound to, refused without it and with another one', async () => {
    const token = await opaque(RESOURCES.opaque, { bound: true });
    const demo = { certPem: shared.demo.certPem, keyPem: shared.demo.keyPem };
    const other = { certPem: shared.pki.client.certPem, keyPem: shared.pki.client.keyPem };
    expect((await post(ROUTES.inferBound, { token, client: demo })).status).toBe(200);
    expectRefused(await post(ROUTES.inferBound, { token }), 401, 'ERR_TOKEN_BINDING_MISMATCH');
    expectRefused(await post(ROUTES.infer, { token, client: other }), 401, 'ERR_TOKEN_BINDING_MISMATCH');
  });

  it('an unbound opaque token does not pass a route that requires binding', async () => {
    const token = await opaque(RESOURCES.opaque);
    const demo = { certPem: shared.demo.certPem, keyPem: shared.demo.keyPem };
    expectRefused(await post(ROUTES.inferBound, { token, client: demo }), 401, 'ERR_TOKEN_BINDING_REQUIRED');
  });
});

describe('calls to the introspection endpoint', () => {
  it('concurrent requests with one token make one introspection call (single-flight)', async () => {
    const token = await opaque(RESOURCES.opaque);
    const before = introspectionCalls();
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post(routeOf(DOORS[i % 2] ?? 'guard'), { token })),
    );
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 12 }, () => 200));
    expect(introspectionCalls()).toBe(before + 1);
  });

  it('a cached answer is reused, but never past the token exp', async () => {
    // RESOURCES.short tokens live 10 s; maxCacheSeconds is 60: exp is what bounds the reuse.
    const token = await opaque(RESOURCES.short);
    const before = introspectionCalls();
    expect((await post(ROUTES.infer, { token })).status).toBe(200);
    expect((await post(ROUTES.passportInfer, { token })).status).toBe(200);
    expect(introspectionCalls()).toBe(before + 1);
    const exp = verifier.stats().introspection;
    expect(exp?.cacheHits).toBeGreaterThan(0);
    // Wait until the token expired at the IdP (10 s TTL, plus a margin).
    await new Promise((resolve) => setTimeout(resolve, 11_500));
    const late = await post(ROUTES.infer, { token });
    expect(late.status).toBe(401);
    expect(['ERR_TOKEN_INACTIVE', 'ERR_TOKEN_EXPIRED']).toContain(late.body['code']);
    // The cache did not answer: the IdP was asked again.
    expect(introspectionCalls()).toBe(before + 2);
  }, 30_000);
});

describe('the IdP is unreachable (last: it closes the IdP)', () => {
  const fresh = new Map<Door, readonly [string, string]>();

  beforeAll(async () => {
    // Tokens never presented before (so nothing cached), then the IdP goes away.
    for (const door of DOORS)
      fresh.set(door, [await opaque(RESOURCES.opaque), await opaque(RESOURCES.opaque)]);
    await idp.idp.close();
  });

  it.each(DOORS)(
    'a fresh opaque token through the %s is 503 ERR_INTROSPECTION_UNAVAILABLE, never 200',
    async (door) => {
      const [token, other] = fresh.get(door) ?? ['', ''];
      const r = await post(routeOf(door), { token });
      expectRefused(r, 503, 'ERR_INTROSPECTION_UNAVAILABLE');
      expect(r.headers['www-authenticate']).toBeUndefined();
      expect(r.text).not.toContain(token);
      // The same token again, and another: a failure is cached neither as a success nor as a refusal.
      expectRefused(await post(routeOf(door), { token }), 503, 'ERR_INTROSPECTION_UNAVAILABLE');
      expectRefused(await post(routeOf(door), { token: other }), 503, 'ERR_INTROSPECTION_UNAVAILABLE');
    },
  );

  it('the unavailability was logged, naming the endpoint and a reason, not the token', () => {
    const lines = logger.lines.filter((l) => l.includes('ShieldIntrospection'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes(idp.endpoint))).toBe(true);
  });
});

describe('nothing sensitive is logged', () => {
  it('no token, no private key in any log line, audit event or console line', () => {
    const everything = [...logger.lines, ...audit.lines, ...consoleLines];
    expect(tokens.size).toBeGreaterThan(5);
    for (const token of tokens) {
      for (const line of everything) expect(line.includes(token), 'a token was logged').toBe(false);
    }
    for (const line of everything) expect(line).not.toContain('PRIVATE KEY');
  });
});
