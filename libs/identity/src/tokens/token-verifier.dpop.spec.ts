/**
 * The token verifier's part of DPoP (RFC 9449): tokens bound by `cnf.jkt` are returned only to a
 * caller that checks their proofs (`ctx.dpop`, the identity module with `dpop` configured), the
 * `DPoP` Authorization scheme is read only then, and an issuer can require sender-constrained
 * tokens. The proofs themselves are checked in src/dpop (dpop-proof.spec.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { claimsAt, signToken, testKey, type TestKey } from '../../test/test-tokens.js';
import { extractAccessToken } from './bearer-token.js';
import { TokenVerifier, type VerifyContext } from './token-verifier.js';
import { resolveTokenVerifierOptions } from './token-verifier-options.js';

const NOW = Date.UTC(2031, 0, 15, 12, 0, 0);
const A = 'https://idp-a.example.test';
const STRICT = 'https://idp-strict.example.test';
const AUD = 'https://api.example.test';
const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const X5T = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2';

let key: TestKey;
let verifier: TokenVerifier;

async function outcome(token: string, ctx?: VerifyContext): Promise<string> {
  try {
    const v = await verifier.verify(token, ctx);
    return v.dpopKeyThumbprint !== undefined ? `accepted jkt=${v.dpopKeyThumbprint}` : 'accepted';
  } catch (err) {
    return isShieldError(err) ? err.code : `not a ShieldError: ${String(err)}`;
  }
}

const sign = (extra: Record<string, unknown>, iss = A) => signToken(key, claimsAt(NOW, iss, AUD, extra));

beforeAll(async () => {
  key = await testKey('ES256', 'k1');
  const jwks = { keys: [key.publicJwk] };
  verifier = await TokenVerifier.create(
    resolveTokenVerifierOptions({
      issuers: [
        { issuer: A, audience: AUD, jwks },
        { issuer: STRICT, audience: AUD, jwks, requireSenderConstrained: true },
      ],
    }),
    { now: () => NOW },
  );
});

afterAll(async () => {
  await verifier?.close();
});

describe('DPoP-bound tokens (cnf.jkt)', () => {
  it.each<[string, Record<string, unknown>, VerifyContext | undefined, string]>([
    ['bound, caller checks proofs', { cnf: { jkt: JKT } }, { dpop: true }, `accepted jkt=${JKT}`],
    [
      'bound, caller does not check proofs (no dpop option)',
      { cnf: { jkt: JKT } },
      undefined,
      'ERR_TOKEN_CLAIM_INVALID',
    ],
    ['bound, dpop: false', { cnf: { jkt: JKT } }, { dpop: false }, 'ERR_TOKEN_CLAIM_INVALID'],
    ['jkt malformed', { cnf: { jkt: 'short' } }, { dpop: true }, 'ERR_TOKEN_CLAIM_INVALID'],
    [
      'jkt and x5t#S256 together',
      { cnf: { jkt: JKT, 'x5t#S256': X5T } },
      { dpop: true },
      'ERR_TOKEN_CLAIM_INVALID',
    ],
    ['unbound token, caller checks proofs', {}, { dpop: true }, 'accepted'],
  ])('%s → %s', async (_name, extra, ctx, expected) => {
    expect(await outcome(await sign(extra), ctx)).toBe(expected);
  });

  it('a cached verification of a bound token is still refused to a caller that checks no proofs', async () => {
    const token = await sign({ cnf: { jkt: JKT } });
    expect(await outcome(token, { dpop: true })).toBe(`accepted jkt=${JKT}`);
    expect(await outcome(token)).toBe('ERR_TOKEN_CLAIM_INVALID');
  });
});

describe('an issuer that requires sender-constrained tokens', () => {
  it.each<[string, Record<string, unknown>, VerifyContext | undefined, string]>([
    ['plain bearer token', {}, { dpop: true }, 'ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED'],
    ['DPoP-bound', { cnf: { jkt: JKT } }, { dpop: true }, `accepted jkt=${JKT}`],
    [
      'certificate-bound, without its certificate',
      { cnf: { 'x5t#S256': X5T } },
      {},
      'ERR_TOKEN_BINDING_MISMATCH',
    ],
  ])('%s → %s', async (_name, extra, ctx, expected) => {
    expect(await outcome(await sign(extra, STRICT), ctx)).toBe(expected);
  });
});

describe('the DPoP Authorization scheme', () => {
  it('is read only when the caller checks proofs', async () => {
    const token = await sign({ cnf: { jkt: JKT } });
    await expect(verifier.verifyAuthorization(undefined, `DPoP ${token}`)).rejects.toMatchObject({
      code: 'ERR_TOKEN_MISSING',
    });
    const v = await verifier.verifyAuthorization(undefined, `DPoP ${token}`, { dpop: true });
    expect(v.dpopKeyThumbprint).toBe(JKT);
  });

  it.each([
    ['DPoP abc.def.ghi', 'DPoP', 'abc.def.ghi'],
    ['dpop   abc.def.ghi  ', 'DPoP', 'abc.def.ghi'],
    ['Bearer abc.def.ghi', 'Bearer', 'abc.def.ghi'],
  ])('extractAccessToken(%j)', (header, scheme, token) => {
    expect(extractAccessToken(header, 8192)).toEqual({ scheme, token });
  });

  it.each([
    ['DPoP', 'ERR_TOKEN_MALFORMED'],
    ['DPoP a b', 'ERR_TOKEN_MALFORMED'],
    ['DPoPx abc', 'ERR_TOKEN_MISSING'],
    [`DPoP ${'a'.repeat(9000)}`, 'ERR_TOKEN_TOO_LARGE'],
    ['Basic abc', 'ERR_TOKEN_MISSING'],
  ])('extractAccessToken refuses %j with %s', (header, code) => {
    expect(() => extractAccessToken(header.slice(0, 9100), 8192)).toThrow(expect.objectContaining({ code }));
  });
});
