/**
 * Key-set behaviour against a real HTTPS identity provider on loopback (node https, a server
 * certificate from our dev PKI, counting every request): discovery, the private CA, refetch on
 * unknown kid (single-flight, cooldown), rotation, outages, staleness, and the fetch limits.
 * The verifier's clock is injected, so cooldowns and staleness need no sleeping.
 */
import { createServer as createHttpsServer, type Server } from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import type { JWK } from 'jose';
import { b64, claimsAt, forgeToken, signToken, testKey, type TestKey } from '../../test/test-tokens.js';
import { TokenVerifier } from './token-verifier.js';
import { resolveTokenVerifierOptions } from './token-verifier-options.js';
import type { IssuerOptions } from './token-verifier-options.interface.js';

const AUD = 'https://api.example.test';
const START = Date.UTC(2031, 5, 1, 8, 0, 0);

interface Idp {
  readonly base: string;
  readonly state: {
    keys: JWK[];
    jwksStatus: number;
    jwksDelayMs: number;
    contentType: string;
    discovery?: Record<string, unknown>;
  };
  hits(path: string): number;
  close(): Promise<void>;
}

let ca: DevCertificateAuthority;
let caPem: string;
let k1: TestKey;
let k2: TestKey;
let clock = START;
const idps: Idp[] = [];
const verifiers: TokenVerifier[] = [];

async function startIdp(): Promise<Idp> {
  const tls = await ca.issueServer({ hosts: ['localhost', '127.0.0.1'] });
  const hits = new Map<string, number>();
  const state: Idp['state'] = {
    keys: [k1.publicJwk],
    jwksStatus: 200,
    jwksDelayMs: 0,
    contentType: 'application/json',
  };
  let base = '';
  const server: Server = createHttpsServer({ cert: tls.chainPem, key: tls.keyPem }, (req, res) => {
    const path = new URL(req.url ?? '/', 'https://idp.invalid').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (path === '/.well-known/openid-configuration') {
      send(
        200,
        'application/json',
        JSON.stringify(state.discovery ?? { issuer: base, jwks_uri: `${base}/jwks` }),
      );
    } else if (path === '/jwks') {
      const timer = setTimeout(
        () => send(state.jwksStatus, state.contentType, JSON.stringify({ keys: state.keys })),
        state.jwksDelayMs,
      );
      timer.unref();
    } else if (path === '/redirect') {
      res.writeHead(302, { location: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks` });
      res.end();
    } else if (path === '/big') {
      send(200, 'application/json', JSON.stringify({ keys: [k1.publicJwk], pad: 'x'.repeat(600 * 1024) }));
    } else {
      send(404, 'text/plain', 'not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const idp: Idp = {
    base,
    state,
    hits: (path) => hits.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  idps.push(idp);
  return idp;
}

async function verifierFor(
  idp: Idp,
  issuer: Partial<IssuerOptions> = {},
  top: { cacheMaxEntries?: number; startup?: 'fail' | 'not-ready' } = {},
): Promise<TokenVerifier> {
  const options = resolveTokenVerifierOptions({
    cacheMaxEntries: 0,
    ...top,
    issuers: [{ issuer: idp.base, audience: AUD, ca: { pem: caPem }, ...issuer }],
  });
  const verifier = await TokenVerifier.create(options, { now: () => clock });
  verifiers.push(verifier);
  return verifier;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    return isShieldError(err) ? err.code : `not a ShieldError: ${String(err)}`;
  }
}

const token = (key: TestKey, idp: Idp, header: Record<string, unknown> = {}) =>
  signToken(key, claimsAt(clock, idp.base, AUD), header);

beforeAll(async () => {
  ca = await DevCertificateAuthority.create();
  caPem = ca.certPem;
  [k1, k2] = await Promise.all([testKey('RS256', 'k1'), testKey('ES256', 'k2')]);
});

afterEach(async () => {
  clock = START;
  await Promise.all(verifiers.splice(0).map((v) => v.close()));
});

afterAll(async () => {
  await Promise.all(idps.splice(0).map((idp) => idp.close()));
});

describe('loading at start-up', () => {
  it('discovers the JWKS through the issuer CA and loads it before create() resolves', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp);
    expect(verifier.ready).toBe(true);
    expect(idp.hits('/.well-known/openid-configuration')).toBe(1);
    expect(verifier.stats().issuers[idp.base]).toMatchObject({ jwksFetches: 1, keys: 1, lastFetchOk: START });
    expect(await codeOf(verifier.verify(await token(k1, idp)))).toBe('accepted');
  });

  it('uses a given jwksUri without discovery', async () => {
    const idp = await startIdp();
    await verifierFor(idp, { jwksUri: `${idp.base}/jwks` });
    expect(idp.hits('/.well-known/openid-configuration')).toBe(0);
    expect(idp.hits('/jwks')).toBe(1);
  });

  it.each([
    [
      'without the private CA (system roots only)',
      {},
      () => ({ ca: undefined }),
      /failed: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/,
    ],
    [
      'when discovery names another issuer',
      { discovery: { issuer: 'https://evil.example.test', jwks_uri: 'https://127.0.0.1:1/jwks' } },
      () => ({}),
      /the document's "issuer" is not/,
    ],
    [
      'when discovery points jwks_uri at http:',
      {},
      (idp: Idp) => ({ discoveryOverride: { issuer: idp.base, jwks_uri: `http://127.0.0.1/jwks` } }),
      /"jwks_uri" is not an https: URL/,
    ],
    [
      'when the JWKS redirects',
      {},
      (idp: Idp) => ({ jwksUri: `${idp.base}/redirect` }),
      /GET https:\/\/127\.0\.0\.1:\d+\/redirect failed/,
    ],
    [
      'when the JWKS is larger than 512 KiB',
      {},
      (idp: Idp) => ({ jwksUri: `${idp.base}/big` }),
      /answered more than 524288 bytes/,
    ],
    ['when the JWKS is not JSON', { contentType: 'text/html' }, () => ({}), /content type that is not JSON/],
    ['when the JWKS answers 500', { jwksStatus: 500 }, () => ({}), /answered HTTP 500/],
    [
      'when the JWKS has no usable key',
      { keys: [{ kty: 'RSA', kid: 'enc', use: 'enc', n: 'AQAB', e: 'AQAB' }] },
      () => ({}),
      /no usable signing key/,
    ],
  ] as const)('refuses to start %s', async (_name, state, issuerFor, message) => {
    const idp = await startIdp();
    const { discoveryOverride, ...issuer } = issuerFor(idp) as Partial<IssuerOptions> & {
      discoveryOverride?: Record<string, unknown>;
    };
    Object.assign(idp.state, state, discoveryOverride ? { discovery: discoveryOverride } : {});
    const raw = { issuers: [{ issuer: idp.base, audience: AUD, ca: { pem: caPem }, ...issuer }] };
    if ('ca' in issuer && issuer.ca === undefined) delete (raw.issuers[0] as { ca?: unknown }).ca;
    const failure = TokenVerifier.create(resolveTokenVerifierOptions(raw), { now: () => clock });
    await expect(failure).rejects.toMatchObject({ code: 'ERR_KEYSET_UNAVAILABLE' });
    await expect(failure).rejects.toThrow(message);
    await expect(failure).rejects.toThrow(idp.base);
  });

  it('with startup "not-ready": starts, answers 503 until the keys load, then serves', async () => {
    const idp = await startIdp();
    idp.state.jwksStatus = 503;
    const verifier = await verifierFor(idp, { refetchCooldownMs: 100 }, { startup: 'not-ready' });
    expect(verifier.ready).toBe(false);
    const early = await token(k1, idp);
    expect(await codeOf(verifier.verify(early))).toBe('ERR_KEYSET_UNAVAILABLE');
    idp.state.jwksStatus = 200;
    await verifier.whenReady();
    expect(verifier.ready).toBe(true);
    expect(await codeOf(verifier.verify(early))).toBe('accepted');
  });

  it('with startup "not-ready": whenReady() rejects if the verifier closes first (no hang)', async () => {
    const idp = await startIdp();
    idp.state.jwksStatus = 503;
    const verifier = await verifierFor(idp, { refetchCooldownMs: 100 }, { startup: 'not-ready' });
    const ready = verifier.whenReady().then(
      () => 'resolved',
      (err: unknown) => String(err),
    );
    await verifier.close();
    expect(await ready).toMatch(/closed before its keys were loaded/);
  });
});

describe('unknown kid: refetch single-flight, at most once per cooldown', () => {
  it('a flood of random kids causes one JWKS request per cooldown; all of them 401', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp, { refetchCooldownMs: 30_000 });
    expect(idp.hits('/jwks')).toBe(1);
    idp.state.jwksDelayMs = 100; // keep the refetch in flight while the flood arrives

    const flood = async (n: number) => {
      const tokens = await Promise.all(
        Array.from({ length: n }, (_, i) => token(k1, idp, { kid: `random-${n}-${i}-${Math.random()}` })),
      );
      return Promise.all(tokens.map((t) => codeOf(verifier.verify(t))));
    };

    // Within the cooldown of the start-up fetch: nothing is fetched.
    expect(new Set(await flood(50))).toEqual(new Set(['ERR_TOKEN_KEY_NOT_FOUND']));
    expect(idp.hits('/jwks')).toBe(1);

    clock += 30_001;
    expect(new Set(await flood(200))).toEqual(new Set(['ERR_TOKEN_KEY_NOT_FOUND']));
    expect(idp.hits('/jwks')).toBe(2); // one refetch shared by 200 requests
    expect(new Set(await flood(200))).toEqual(new Set(['ERR_TOKEN_KEY_NOT_FOUND']));
    expect(idp.hits('/jwks')).toBe(2); // cooldown

    clock += 30_001;
    await flood(20);
    expect(idp.hits('/jwks')).toBe(3);
    expect(verifier.stats().issuers[idp.base]?.jwksFetches).toBe(3);
    // The known key kept working throughout.
    expect(await codeOf(verifier.verify(await token(k1, idp)))).toBe('accepted');
  });
});

describe('rotation', () => {
  it('accepts the new key after one refetch, keeps the old one while it is in the set, drops it after', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp, { refetchCooldownMs: 1000 }, { cacheMaxEntries: 100 });
    const old = await token(k1, idp);
    expect(await codeOf(verifier.verify(old))).toBe('accepted');

    idp.state.keys = [k1.publicJwk, k2.publicJwk];
    clock += 1001;
    const fresh = await token(k2, idp);
    expect(await codeOf(verifier.verify(fresh))).toBe('accepted');
    expect(idp.hits('/jwks')).toBe(2);
    expect(await codeOf(verifier.verify(old))).toBe('accepted');
    expect(verifier.stats().cacheHits).toBe(1);

    // The IdP retires k1: the cached verification of `old` goes with it.
    idp.state.keys = [k2.publicJwk];
    await verifier.refreshKeys();
    expect(verifier.stats().cacheEntries).toBe(1);
    expect(await codeOf(verifier.verify(old))).toBe('ERR_TOKEN_KEY_NOT_FOUND');
    expect(await codeOf(verifier.verify(fresh))).toBe('accepted');
  });

  it('concurrent requests with a new kid share one refetch (single-flight) and all succeed', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp, { refetchCooldownMs: 1000 });
    idp.state.keys = [k1.publicJwk, k2.publicJwk];
    idp.state.jwksDelayMs = 100;
    clock += 1001;
    const tokens = await Promise.all(
      Array.from({ length: 50 }, (_, i) => signToken(k2, claimsAt(clock, idp.base, AUD, { jti: `c${i}` }))),
    );
    const codes = await Promise.all(tokens.map((t) => codeOf(verifier.verify(t))));
    expect(new Set(codes)).toEqual(new Set(['accepted']));
    expect(idp.hits('/jwks')).toBe(2);
  });

  it('refreshes lazily once the refresh interval has passed, without delaying the request', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp, { refreshIntervalMs: 60_000 });
    clock += 60_000;
    expect(await codeOf(verifier.verify(await token(k1, idp)))).toBe('accepted');
    await vi.waitFor(() => expect(idp.hits('/jwks')).toBe(2), { timeout: 5000, interval: 10 });
  });

  it('keeps the previous keys when a refresh fails', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp);
    idp.state.jwksStatus = 500;
    await expect(verifier.refreshKeys()).rejects.toThrow(/answered HTTP 500/);
    expect(verifier.stats().issuers[idp.base]).toMatchObject({
      keys: 1,
      lastError: expect.stringMatching(/HTTP 500/),
    });
    expect(await codeOf(verifier.verify(await token(k1, idp)))).toBe('accepted');
  });
});

describe('IdP unreachable', () => {
  it('held keys keep working; an unknown kid is refused at once, not a 500, not a hang', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp, {
      refetchCooldownMs: 1000,
      refreshIntervalMs: 1000,
      maxKeyStalenessMs: 3_600_000,
    });
    await idp.close();

    clock += 5 * 60_000;
    expect(await codeOf(verifier.verify(await token(k1, idp)))).toBe('accepted');
    expect(await codeOf(verifier.verify(await token(k1, idp, { kid: 'new-kid' })))).toBe(
      'ERR_TOKEN_KEY_NOT_FOUND',
    );
    await vi.waitFor(() => expect(verifier.stats().issuers[idp.base]?.lastError).toMatch(/ECONNREFUSED/), {
      timeout: 5000,
    });

    // Past maxKeyStalenessMs, the held keys are no longer trusted: 503 until the IdP is back.
    clock += 3_600_000;
    expect(await codeOf(verifier.verify(await token(k1, idp)))).toBe('ERR_KEYSET_UNAVAILABLE');
  });

  it('an IdP that accepts the request and never answers costs one fetch timeout', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp, { fetchTimeoutMs: 300, refetchCooldownMs: 1000 });
    idp.state.jwksDelayMs = 60_000;
    clock += 1001;
    expect(await codeOf(verifier.verify(await token(k1, idp, { kid: 'unknown' })))).toBe(
      'ERR_TOKEN_KEY_NOT_FOUND',
    );
    expect(idp.hits('/jwks')).toBe(2);
    expect(verifier.stats().issuers[idp.base]?.lastError).toMatch(/timeout|UND_ERR_HEADERS_TIMEOUT/);
    expect(await codeOf(verifier.verify(await token(k1, idp)))).toBe('accepted');
  });
});

describe('the per-connection memo (TokenVerifier.recall) and key changes', () => {
  it('a remembered token whose key left the set is not recalled, and the full check refuses it', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp, { refetchCooldownMs: 1000 }, { cacheMaxEntries: 100 });
    const connection = {};
    const header = `Bearer ${await token(k1, idp)}`;
    const verified = await verifier.verifyAuthorization(connection, header);
    expect(verifier.recall(connection, header)).toBe(verified);

    // A refetch that changes nothing: the memo still answers.
    await verifier.refreshKeys();
    expect(verifier.recall(connection, header)).toBe(verified);
    expect(verifier.stats().connectionMemoHits).toBe(2);
    // A key added: k1 stays, so what it verified stays reusable (one rule for the memo and the
    // cache: the key that verified is still held), by connection and by token alike.
    idp.state.keys = [k1.publicJwk, k2.publicJwk];
    await verifier.refreshKeys();
    expect(verifier.recall(connection, header)).toBe(verified);
    expect(await verifier.verifyAuthorization(connection, header)).toBe(verified);
    expect(verifier.recall(connection, header)).toBe(verified);
    expect(verifier.stats().connectionMemoHits).toBe(4);

    // The IdP retires k1: the same bytes on the same connection are checked in full, and refused.
    idp.state.keys = [k2.publicJwk];
    await verifier.refreshKeys();
    expect(verifier.recall(connection, header)).toBeUndefined();
    expect(await codeOf(verifier.verifyAuthorization(connection, header))).toBe('ERR_TOKEN_KEY_NOT_FOUND');
    expect(verifier.recall(connection, header)).toBeUndefined();
    expect(verifier.stats().connectionMemoHits).toBe(4);
  });

  it('a key replaced under the same kid is a key that left', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp, {}, { cacheMaxEntries: 100 });
    const connection = {};
    const header = `Bearer ${await token(k1, idp)}`;
    await verifier.verifyAuthorization(connection, header);
    const impostor = await testKey('RS256', 'k1');
    idp.state.keys = [impostor.publicJwk];
    await verifier.refreshKeys();
    expect(verifier.recall(connection, header)).toBeUndefined();
    expect(await codeOf(verifier.verifyAuthorization(connection, header))).toBe(
      'ERR_TOKEN_SIGNATURE_INVALID',
    );
  });

  it('past maxKeyStalenessMs without the IdP, a remembered token gets ERR_KEYSET_UNAVAILABLE', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(
      idp,
      { refreshIntervalMs: 1000, refetchCooldownMs: 1000, maxKeyStalenessMs: 60_000 },
      { cacheMaxEntries: 100 },
    );
    const connection = {};
    const header = `Bearer ${await token(k1, idp)}`;
    await verifier.verifyAuthorization(connection, header);
    await idp.close();
    clock += 30_000;
    expect(verifier.recall(connection, header)).toBeDefined();
    clock += 31_000;
    expect(await codeOf(Promise.resolve().then(() => verifier.recall(connection, header)))).toBe(
      'ERR_KEYSET_UNAVAILABLE',
    );
  });
});

describe('what the token cannot make us do', () => {
  it.each(['jku', 'x5u'])('a `%s` header is refused and never fetched', async (param) => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp);
    const evil = await testKey('RS256', 'k1');
    const forged = forgeToken(
      { alg: 'RS256', kid: 'k1', [param]: `${idp.base}/${param}` },
      claimsAt(clock, idp.base, AUD),
      evil,
    );
    expect(await codeOf(verifier.verify(forged))).toBe('ERR_TOKEN_HEADER_UNSUPPORTED');
    expect(idp.hits(`/${param}`)).toBe(0);
    expect(idp.hits('/jwks')).toBe(1);
  });

  it('a weak RSA-1024 key in the fetched set gives 401 for its tokens, never a 500', async () => {
    const idp = await startIdp();
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const weakJwk = {
      ...small.publicKey.export({ format: 'jwk' }),
      kid: 'weak',
      alg: 'RS256',
      use: 'sig',
    } as JWK;
    idp.state.keys = [k1.publicJwk, weakJwk];
    const verifier = await verifierFor(idp);
    expect(verifier.stats().issuers[idp.base]?.keys).toBe(1);
    const weakToken = forgeToken({ alg: 'RS256', kid: 'weak' }, claimsAt(clock, idp.base, AUD), {
      alg: 'RS256',
      privateKey: small.privateKey,
    });
    expect(await codeOf(verifier.verify(weakToken))).toBe('ERR_TOKEN_KEY_UNUSABLE');
    expect(await codeOf(verifier.verify(await token(k1, idp)))).toBe('accepted');
  });

  it('a JWKS with private or symmetric members is not used for them', async () => {
    const idp = await startIdp();
    const secretJwk = { kty: 'oct', kid: 'hmac', k: b64('s'.repeat(32)) } as JWK;
    idp.state.keys = [k1.publicJwk, secretJwk];
    const verifier = await verifierFor(idp);
    const hs = forgeToken({ alg: 'HS256', kid: 'hmac' }, claimsAt(clock, idp.base, AUD), {
      alg: 'HS256',
      secret: 's'.repeat(32),
    });
    expect(await codeOf(verifier.verify(hs))).toBe('ERR_TOKEN_ALG_NOT_ALLOWED');
    expect(verifier.stats().issuers[idp.base]?.keys).toBe(1);
  });
});

describe('close()', () => {
  it('aborts a fetch in flight and closes the agent', async () => {
    const idp = await startIdp();
    const verifier = await verifierFor(idp);
    idp.state.jwksDelayMs = 60_000;
    const refresh = verifier.refreshKeys().then(
      () => 'resolved',
      (err: unknown) => String(err),
    );
    await vi.waitFor(() => expect(idp.hits('/jwks')).toBe(2), { timeout: 5000, interval: 10 });
    await verifier.close();
    expect(await refresh).toMatch(/failed: aborted/);
  });
});
