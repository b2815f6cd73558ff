import { describe, expect, it } from 'vitest';
import { TokenVerifier } from './token-verifier.js';
import { resolveTokenVerifierOptions } from './token-verifier-options.js';

const ISSUER = 'https://idp.example.test';
const base = (extra: Record<string, unknown> = {}) => ({
  issuers: [{ issuer: ISSUER, audience: 'https://api.example.test', ...extra }],
});
const rsaJwk = { kty: 'RSA', kid: 'k1', n: 'sXch', e: 'AQAB' };
const SECRET = 'x'.repeat(32);

describe('resolveTokenVerifierOptions', () => {
  it('fills every default and freezes the result', () => {
    const o = resolveTokenVerifierOptions(base());
    expect(o).toMatchObject({ maxTokenBytes: 8192, cacheMaxEntries: 10_000, startup: 'fail' });
    const issuer = o.issuers[0];
    expect(issuer).toMatchObject({
      issuer: ISSUER,
      audience: ['https://api.example.test'],
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      keySource: { kind: 'discovery', discoveryUrl: `${ISSUER}/.well-known/openid-configuration` },
      requireAccessTokenType: false,
      clockToleranceSeconds: 5,
      method: 'oidc',
      scopeClaim: 'scope',
      fetchTimeoutMs: 5000,
      refetchCooldownMs: 30_000,
      maxKeyStalenessMs: 86_400_000,
      refreshIntervalMs: 600_000,
    });
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(o.issuers)).toBe(true);
    expect(Object.isFrozen(issuer)).toBe(true);
    expect(Object.isFrozen(issuer?.algorithms)).toBe(true);
  });

  it('builds the discovery URL without a double slash', () => {
    const o = resolveTokenVerifierOptions({ issuers: [{ issuer: `${ISSUER}/realms/a/`, audience: 'x' }] });
    expect(o.issuers[0]?.keySource).toEqual({
      kind: 'discovery',
      discoveryUrl: `${ISSUER}/realms/a/.well-known/openid-configuration`,
    });
  });

  it('enables only the HS* algorithms the shared secret is long enough for, for that issuer only', () => {
    const o = resolveTokenVerifierOptions({
      issuers: [
        { issuer: ISSUER, audience: 'x', sharedSecret: SECRET },
        {
          issuer: 'https://other.test',
          audience: 'x',
          sharedSecret: 's'.repeat(64),
          jwks: { keys: [rsaJwk] },
        },
        { issuer: 'https://third.test', audience: 'x' },
      ],
    });
    expect(o.issuers[0]?.algorithms).toEqual(['HS256']);
    expect(o.issuers[0]?.keySource).toEqual({ kind: 'none' });
    expect(o.issuers[1]?.algorithms).toEqual(['RS256', 'PS256', 'ES256', 'EdDSA', 'HS256', 'HS384', 'HS512']);
    expect(o.issuers[2]?.algorithms).not.toContain('HS256');
  });

  it('copies the shared secret so the caller cannot change it later', () => {
    const secret = new Uint8Array(32).fill(7);
    const o = resolveTokenVerifierOptions(base({ sharedSecret: secret }));
    secret.fill(0);
    expect(o.issuers[0]?.sharedSecret?.[0]).toBe(7);
  });

  it.each([
    [undefined, /"tokens" must be an object/],
    [{}, /"issuers" must be a non-empty array/],
    [{ issuers: [] }, /"issuers" must be a non-empty array/],
    [{ ...base(), extra: 1 }, /"tokens" has an unknown option "extra"/],
    [base({ audiance: 'x' }), /"issuers\[0\]" has an unknown option "audiance"/],
    [base({ issuer: 'http://idp.example.test' }), /"issuers\[0\].issuer" must be an https: URL/],
    [base({ issuer: 'https://idp.test/?tenant=a' }), /"issuers\[0\].issuer" must not have a query/],
    [base({ issuer: 'idp' }), /"issuers\[0\].issuer" must be an absolute https: URL/],
    [base({ jwksUri: 'http://idp.example.test/jwks' }), /"issuers\[0\].jwksUri" must be an https: URL/],
    [base({ jwksUri: 'https://user:pw@idp.test/jwks' }), /"issuers\[0\].jwksUri" must not carry credentials/],
    [base({ audience: [] }), /"issuers\[0\].audience" must not be empty/],
    [base({ audience: '' }), /"issuers\[0\].audience" must be a non-empty string/],
    [base({ algorithms: ['none'] }), /"issuers\[0\].algorithms" holds "none", which is not supported/],
    [base({ algorithms: ['HS256'] }), /"issuers\[0\].algorithms" holds HS256, which needs "sharedSecret"/],
    [base({ algorithms: [] }), /"issuers\[0\].algorithms" must not be empty/],
    [base({ sharedSecret: 'short' }), /"issuers\[0\].sharedSecret" must be at least 32 bytes, got 5/],
    [base({ sharedSecret: SECRET, algorithms: ['HS512'] }), /HS512, which needs a shared secret of 64 bytes/],
    [base({ sharedSecret: SECRET, algorithms: ['RS256'] }), /RS256, which needs "jwks" or "jwksUri"/],
    [base({ sharedSecret: 42 }), /"issuers\[0\].sharedSecret" must be a string or a Uint8Array/],
    [base({ jwks: { keys: [rsaJwk] }, jwksUri: `${ISSUER}/jwks` }), /must not set both "jwks" and "jwksUri"/],
    [base({ jwks: { keys: [] } }), /"issuers\[0\].jwks.keys" must be an array of 1 to 100 keys/],
    [
      base({ jwks: { keys: [{ ...rsaJwk, d: 'secret' }] } }),
      /"issuers\[0\].jwks.keys\[0\]" must be a public key; it has "d"/,
    ],
    [base({ jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }), /must be a public key; it has "k"/],
    [base({ jwks: { keys: [rsaJwk] }, ca: 'pem' }), /"issuers\[0\].ca" is only used to fetch keys/],
    // A bare string was PEM text here and a path elsewhere: refused with core's message.
    [
      base({ ca: 'not a pem' }),
      /"issuers\[0\].ca" must be \{ file: .* \} or \{ pem: .* \}, got a bare string/,
    ],
    [
      base({ ca: { pem: 'x', file: '/ca.pem' } }),
      /"issuers\[0\].ca" must have exactly one of "file" or "pem"/,
    ],
    [base({ ca: { pem: '' } }), /"issuers\[0\].ca.pem" must be non-empty PEM text or bytes/],
    [
      base({ clockToleranceSeconds: 301 }),
      /"issuers\[0\].clockToleranceSeconds" must be an integer from 0 to 300/,
    ],
    [base({ clockToleranceSeconds: -1 }), /clockToleranceSeconds/],
    [base({ method: 'ldap' }), /"issuers\[0\].method" must be one of "oidc", "saml"/],
    [base({ requireAccessTokenType: 'yes' }), /"issuers\[0\].requireAccessTokenType" must be a boolean/],
    [base({ fetchTimeoutMs: 0 }), /"issuers\[0\].fetchTimeoutMs" must be an integer/],
    [base({ refetchCooldownMs: 0 }), /"issuers\[0\].refetchCooldownMs" must be an integer/],
    [
      base({ refreshIntervalMs: 60_000, maxKeyStalenessMs: 1000 }),
      /"issuers\[0\].maxKeyStalenessMs" must be an integer from 60000/,
    ],
    [{ ...base(), maxTokenBytes: 1_000_000 }, /"maxTokenBytes" must be an integer from 512 to 65536/],
    [{ ...base(), cacheMaxEntries: -1 }, /"cacheMaxEntries"/],
    [{ ...base(), startup: 'lazy' }, /"startup" must be one of "fail", "not-ready"/],
    [
      {
        issuers: [
          { issuer: ISSUER, audience: 'a' },
          { issuer: ISSUER, audience: 'b' },
        ],
      },
      /"issuers\[1\].issuer" repeats/,
    ],
  ])('%# refuses %j', (raw, message) => {
    expect(() => resolveTokenVerifierOptions(raw)).toThrow(TypeError);
    expect(() => resolveTokenVerifierOptions(raw)).toThrow(message);
  });

  it('prefixes field names with the path of the options inside others', () => {
    expect(() => resolveTokenVerifierOptions(base({ jwksUri: 'http://idp.test/jwks' }), 'oidc')).toThrow(
      /"oidc.issuers\[0\].jwksUri" must be an https: URL/,
    );
    expect(() => resolveTokenVerifierOptions({ ...base(), typo: 1 }, 'oidc')).toThrow(
      /"oidc" has an unknown option "typo"/,
    );
  });

  it('never prints the shared secret', () => {
    const secret = 'do-not-print-me';
    expect(() => resolveTokenVerifierOptions(base({ sharedSecret: secret }))).toThrow(/at least 32 bytes/);
    try {
      resolveTokenVerifierOptions(base({ sharedSecret: secret }));
    } catch (err) {
      expect(String(err)).not.toContain(secret);
    }
  });
});

describe('an issuer "ca": core\'s shape and checks, read when the verifier is created', () => {
  const create = (ca: unknown) => TokenVerifier.create(resolveTokenVerifierOptions(base({ ca })));

  it('keeps { file } and a private copy of { pem } in the resolved options', () => {
    const pem = Buffer.from('-----BEGIN CERTIFICATE-----');
    const o = resolveTokenVerifierOptions(base({ ca: { pem } }));
    pem.fill(0);
    expect(String((o.issuers[0]?.ca as { pem: Buffer }).pem)).toBe('-----BEGIN CERTIFICATE-----');
    expect(resolveTokenVerifierOptions(base({ ca: { file: '/etc/ca.pem' } })).issuers[0]?.ca).toEqual({
      file: '/etc/ca.pem',
    });
  });

  it.each([
    [{ pem: 'not a pem' }, /"issuers\[0\].ca.pem" holds no PEM certificate/],
    [
      { pem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
      /certificate #1 cannot be parsed/,
    ],
    [{ file: '/nonexistent/shield-ca.pem' }, /\/nonexistent\/shield-ca.pem/],
  ])('refuses %j before any fetch, with a coded error naming it', async (ca, message) => {
    const failure = create(ca);
    await expect(failure).rejects.toThrow(message);
    await expect(failure).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_CERT_/) });
  });
});
