/**
 * The per-connection memo of TokenVerifier (`verifyAuthorization` remembers, `recall` answers):
 * the same connection presenting the byte-identical Authorization header skips hashing and
 * parsing, but never the checks that depend on time, keys or the connection. Inline keys and an
 * injected clock; key-set changes (a key leaving, staleness) are in issuer-key-set.spec.ts.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import { certificateThumbprint } from './certificate-thumbprint.js';
import { claimsAt, signToken, testKey, type TestKey } from '../../test/test-tokens.js';
import { TokenVerifier, type VerifyContext } from './token-verifier.js';
import { resolveTokenVerifierOptions } from './token-verifier-options.js';
import { VerifiedTokenCache } from './verified-token-cache.js';

const NOW = Date.UTC(2031, 0, 15, 12, 0, 0);
const SEC = Math.floor(NOW / 1000);
const ISS = 'https://idp.example.test';
const AUD = 'https://api.example.test';

let key: TestKey;
let certA: X509Certificate;
let certB: X509Certificate;
let clock = NOW;
const opened: TokenVerifier[] = [];

async function make(cacheMaxEntries = 100): Promise<TokenVerifier> {
  const verifier = await TokenVerifier.create(
    resolveTokenVerifierOptions({
      cacheMaxEntries,
      issuers: [{ issuer: ISS, audience: AUD, jwks: { keys: [key.publicJwk] } }],
    }),
    { now: () => clock },
  );
  opened.push(verifier);
  return verifier;
}

const bearer = async (extra: Record<string, unknown> = {}) =>
  `Bearer ${await signToken(key, claimsAt(clock, ISS, AUD, extra))}`;

/** The code of a refusal, thrown synchronously or as a rejection. */
async function codeOf(run: () => unknown): Promise<string> {
  try {
    await run();
    return 'accepted';
  } catch (err) {
    return isShieldError(err) ? err.code : `not a ShieldError: ${String(err)}`;
  }
}

beforeAll(async () => {
  key = await testKey('ES256', 'k1');
  const ca = await DevCertificateAuthority.create();
  certA = new X509Certificate((await ca.issueClient({ spiffeId: 'spiffe://shield.test/a' })).certPem);
  certB = new X509Certificate((await ca.issueClient({ spiffeId: 'spiffe://shield.test/b' })).certPem);
});

afterEach(async () => {
  clock = NOW;
  vi.restoreAllMocks();
  await Promise.all(opened.splice(0).map((v) => v.close()));
});

afterAll(() => {
  vi.restoreAllMocks();
});

describe('TokenVerifier.recall: what it saves', () => {
  it('answers the same header on the same connection without hashing or parsing it, and counts it', async () => {
    const verifier = await make();
    const connection = {};
    const header = await bearer();
    const verified = await verifier.verifyAuthorization(connection, header);
    expect(verifier.stats()).toMatchObject({ cacheMisses: 1, cacheHits: 0, connectionMemoHits: 0 });

    const keyOf = vi.spyOn(VerifiedTokenCache, 'keyOf');
    expect(verifier.recall(connection, header)).toBe(verified);
    expect(verifier.recall(connection, header)).toBe(verified);
    // No SHA-256 of the token, no cache lookup: the memo answered both.
    expect(keyOf).not.toHaveBeenCalled();
    expect(verifier.stats()).toMatchObject({ cacheMisses: 1, cacheHits: 0, connectionMemoHits: 2 });
  });

  it('another connection gets the full path (here a cache hit), then a memo of its own', async () => {
    const verifier = await make();
    const [a, b] = [{}, {}];
    const header = await bearer();
    const verified = await verifier.verifyAuthorization(a, header);
    expect(verifier.recall(b, header)).toBeUndefined();
    expect(await verifier.verifyAuthorization(b, header)).toBe(verified);
    expect(verifier.stats()).toMatchObject({ cacheHits: 1, connectionMemoHits: 0 });
    expect(verifier.recall(b, header)).toBe(verified);
    expect(verifier.stats().connectionMemoHits).toBe(1);
  });
});

describe('TokenVerifier.recall: only the byte-identical header, only while it would still pass', () => {
  it.each([
    ['another token', async (h: string) => `${h.slice(0, 7)}${(await bearer({ jti: 'other' })).slice(7)}`],
    ['the same token, two spaces after the scheme', (h: string) => h.replace('Bearer ', 'Bearer  ')],
    ['the same token, scheme in lower case', (h: string) => h.replace('Bearer', 'bearer')],
    ['the same token and a trailing space', (h: string) => `${h} `],
    ['one character changed, same length', (h: string) => `${h.slice(0, -1)}${h.endsWith('A') ? 'B' : 'A'}`],
    ['a non-ASCII character in place of the last one', (h: string) => `${h.slice(0, -1)}\u00e9`],
    [
      'a non-ASCII character in place of one in the middle',
      (h: string) => `${h.slice(0, 20)}\u00e9${h.slice(21)}`,
    ],
    [
      'a character beyond Latin-1 whose low byte is the original',
      (h: string) => `${h.slice(0, 20)}${String.fromCharCode(0x100 + h.charCodeAt(20))}${h.slice(21)}`,
    ],
  ])('%s is not recalled', async (_name, variant) => {
    const verifier = await make();
    const connection = {};
    const header = await bearer();
    await verifier.verifyAuthorization(connection, header);
    const other = await variant(header);
    expect(other).not.toBe(header);
    expect(verifier.recall(connection, other)).toBeUndefined();
    expect(verifier.stats().connectionMemoHits).toBe(0);
  });

  it('a connection shared by two clients (a gateway pool): each header gets its own principal', async () => {
    const verifier = await make();
    const pooled = {};
    const alice = await bearer({ sub: 'alice' });
    const bob = await bearer({ sub: 'bob' });
    expect((await verifier.verifyAuthorization(pooled, alice)).subject).toBe('alice');
    expect((await verifier.verifyAuthorization(pooled, bob)).subject).toBe('bob');
    // The memo now holds bob's header: alice's is checked again in full, never answered with bob.
    expect(verifier.recall(pooled, alice)).toBeUndefined();
    expect(verifier.recall(pooled, bob)?.subject).toBe('bob');
    expect((await verifier.verifyAuthorization(pooled, alice)).subject).toBe('alice');
    expect(verifier.recall(pooled, alice)?.subject).toBe('alice');
  });

  it('past exp plus the clock tolerance, the memo is not used and the full check refuses', async () => {
    const verifier = await make();
    const connection = {};
    const header = await bearer({ exp: SEC + 60 });
    await verifier.verifyAuthorization(connection, header);
    clock = NOW + 64_999; // exp + 5 s tolerance, minus 1 ms
    expect(verifier.recall(connection, header)).toBeDefined();
    clock = NOW + 65_000;
    expect(verifier.recall(connection, header)).toBeUndefined();
    expect(await codeOf(() => verifier.verifyAuthorization(connection, header))).toBe('ERR_TOKEN_EXPIRED');
    // Refused, so not remembered again.
    expect(verifier.recall(connection, header)).toBeUndefined();
  });

  it('is reused for at most 5 minutes whatever exp says, then checked in full again', async () => {
    const verifier = await make();
    const connection = {};
    const header = await bearer({ exp: SEC + 3600 });
    await verifier.verifyAuthorization(connection, header);
    clock = NOW + 5 * 60_000;
    expect(verifier.recall(connection, header)).toBeUndefined();
    expect(await codeOf(() => verifier.verifyAuthorization(connection, header))).toBe('accepted');
    expect(verifier.stats()).toMatchObject({ cacheMisses: 2, connectionMemoHits: 0 });
  });

  it('re-checks the RFC 8705 binding against the certificate of each request', async () => {
    const verifier = await make();
    const connection = {};
    const header = await bearer({ cnf: { 'x5t#S256': certificateThumbprint(certA) } });
    const withA: VerifyContext = { clientCertificate: certA };
    const verified = await verifier.verifyAuthorization(connection, header, withA);
    expect(verifier.recall(connection, header, withA)).toBe(verified);
    expect(await codeOf(() => verifier.recall(connection, header, { clientCertificate: certB }))).toBe(
      'ERR_TOKEN_BINDING_MISMATCH',
    );
    expect(await codeOf(() => verifier.recall(connection, header))).toBe('ERR_TOKEN_BINDING_MISMATCH');
    expect(await codeOf(() => verifier.recall(connection, header, {}))).toBe('ERR_TOKEN_BINDING_MISMATCH');
    expect(verifier.recall(connection, header, withA)).toBe(verified);

    // A route demanding bound tokens refuses a remembered unbound one.
    const plain = await bearer({ jti: 'unbound' });
    await verifier.verifyAuthorization(connection, plain);
    expect(await codeOf(() => verifier.recall(connection, plain, { requireBinding: true }))).toBe(
      'ERR_TOKEN_BINDING_REQUIRED',
    );
  });
});

describe('TokenVerifier.verifyAuthorization: what is remembered', () => {
  it('reads the bearer credential itself, with the usual refusals, and remembers none of them', async () => {
    const verifier = await make();
    const connection = {};
    const header = await bearer();
    expect(await codeOf(() => verifier.verifyAuthorization(connection, undefined))).toBe('ERR_TOKEN_MISSING');
    expect(await codeOf(() => verifier.verifyAuthorization(connection, 'Basic YWxpY2U6cHc='))).toBe(
      'ERR_TOKEN_MISSING',
    );
    expect(await codeOf(() => verifier.verifyAuthorization(connection, [header, header]))).toBe(
      'ERR_TOKEN_MALFORMED',
    );
    expect(await codeOf(() => verifier.verifyAuthorization(connection, `Bearer ${'a'.repeat(9000)}`))).toBe(
      'ERR_TOKEN_TOO_LARGE',
    );
    const forged = `${header.slice(0, -4)}AAAA`;
    expect(await codeOf(() => verifier.verifyAuthorization(connection, forged))).toBe(
      'ERR_TOKEN_SIGNATURE_INVALID',
    );
    for (const h of ['Basic YWxpY2U6cHc=', forged]) expect(verifier.recall(connection, h)).toBeUndefined();
    expect(verifier.stats().connectionMemoHits).toBe(0);
  });

  it('remembers nothing with the cache off (cacheMaxEntries 0 means: verify every request)', async () => {
    const verifier = await make(0);
    const connection = {};
    const header = await bearer();
    await verifier.verifyAuthorization(connection, header);
    expect(verifier.recall(connection, header)).toBeUndefined();
    expect(verifier.stats()).toMatchObject({ cacheHits: 0, cacheEntries: 0, connectionMemoHits: 0 });
  });

  it('forgets every connection on close()', async () => {
    const verifier = await make();
    const connection = {};
    const header = await bearer();
    await verifier.verifyAuthorization(connection, header);
    await verifier.close();
    expect(verifier.recall(connection, header)).toBeUndefined();
  });
});
