import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseJwtBundles, parseJwtSvid } from './jwt-svid.parse.js';

const ID = 'spiffe://example.org/workload';
const NOW = 1_800_000_000_000;
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function token(header: object, payload: object): string {
  return `${b64(header)}.${b64(payload)}.c2lnbmF0dXJl`;
}

const GOOD_HEADER = { alg: 'ES256', kid: 'k1', typ: 'JWT' };
const GOOD_PAYLOAD = { sub: ID, aud: ['https://sts.example'], exp: NOW / 1000 + 300, iat: NOW / 1000 };

describe('parseJwtSvid', () => {
  it('returns the token, its SPIFFE ID and expiry', () => {
    const svid = parseJwtSvid(
      { spiffe_id: ID, svid: token(GOOD_HEADER, GOOD_PAYLOAD) },
      ['https://sts.example'],
      NOW,
    );
    expect(svid).toMatchObject({ spiffeId: ID, audience: ['https://sts.example'], hint: undefined });
    expect(svid.expiresAt.getTime()).toBe(NOW + 300_000);
    expect(svid.issuedAt?.getTime()).toBe(NOW);
  });

  it.each([
    ['no token', { spiffe_id: ID }, /missing/],
    ['a token of 20 KB', { spiffe_id: ID, svid: `${'a'.repeat(20_000)}.b.c` }, /longer than/],
    ['two parts', { spiffe_id: ID, svid: 'a.b' }, /compact/],
    ['alg none', { spiffe_id: ID, svid: token({ alg: 'none' }, GOOD_PAYLOAD) }, /asymmetric/],
    ['alg HS256', { spiffe_id: ID, svid: token({ alg: 'HS256' }, GOOD_PAYLOAD) }, /asymmetric/],
    [
      'a header that is not JSON',
      { spiffe_id: ID, svid: `bm90IGpzb24.${b64(GOOD_PAYLOAD)}.c2ln` },
      /header is not JSON/,
    ],
    ['no sub', { spiffe_id: ID, svid: token(GOOD_HEADER, { ...GOOD_PAYLOAD, sub: undefined }) }, /sub/],
    [
      'a trust-domain sub',
      {
        spiffe_id: 'spiffe://example.org',
        svid: token(GOOD_HEADER, { ...GOOD_PAYLOAD, sub: 'spiffe://example.org' }),
      },
      /sub/,
    ],
    [
      'sub not the announced ID',
      { spiffe_id: 'spiffe://example.org/other', svid: token(GOOD_HEADER, GOOD_PAYLOAD) },
      /announced/,
    ],
    [
      'aud without ours',
      { spiffe_id: ID, svid: token(GOOD_HEADER, { ...GOOD_PAYLOAD, aud: 'https://other' }) },
      /aud/,
    ],
    ['no exp', { spiffe_id: ID, svid: token(GOOD_HEADER, { ...GOOD_PAYLOAD, exp: undefined }) }, /exp/],
    [
      'exp as a string',
      { spiffe_id: ID, svid: token(GOOD_HEADER, { ...GOOD_PAYLOAD, exp: '9999999999' }) },
      /exp/,
    ],
    [
      'exp past',
      { spiffe_id: ID, svid: token(GOOD_HEADER, { ...GOOD_PAYLOAD, exp: NOW / 1000 - 1 }) },
      /expired/,
    ],
  ])('refuses %s with ERR_SPIFFE_SVID_INVALID', (_name, message, reason) => {
    expect(() => parseJwtSvid(message, ['https://sts.example'], NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_SPIFFE_SVID_INVALID', message: expect.stringMatching(reason) }),
    );
  });
});

describe('parseJwtBundles', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKey.export({ format: 'jwk' });
  const priv = privateKey.export({ format: 'jwk' });
  const doc = (keys: unknown[]): Buffer => Buffer.from(JSON.stringify({ keys }));

  it('keeps the jwt-svid keys of each trust domain, keyed with or without spiffe://', () => {
    const bundles = parseJwtBundles({
      bundles: {
        'spiffe://example.org': doc([
          { ...pub, kid: 'a', use: 'jwt-svid' },
          { ...pub, kid: 'x', use: 'x509-svid' },
        ]),
        'partner.example': doc([{ ...pub, kid: 'b' }]),
      },
    });
    expect(bundles.get('example.org')?.keys.map((k) => (k as { kid?: string }).kid)).toEqual(['a']);
    expect(bundles.get('partner.example')?.keys).toHaveLength(1);
  });

  it.each([
    ['no bundles', {}, /no bundles/],
    ['an invalid trust domain key', { bundles: { 'spiffe://Example.org': doc([]) } }, /invalid trust domain/],
    ['a workload ID as key', { bundles: { 'spiffe://example.org/w': doc([]) } }, /invalid trust domain/],
    ['not JSON', { bundles: { 'example.org': Buffer.from('{') } }, /not JSON/],
    ['no keys array', { bundles: { 'example.org': Buffer.from('{"k":[]}') } }, /not a JWKS/],
    ['a private key', { bundles: { 'example.org': doc([priv]) } }, /not a public key/],
    [
      'a symmetric key',
      { bundles: { 'example.org': doc([{ kty: 'oct', k: 'c2VjcmV0' }]) } },
      /not a public key/,
    ],
    [
      'an unusable key',
      { bundles: { 'example.org': doc([{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }]) } },
      /usable/,
    ],
    ['100 KB', { bundles: { 'example.org': Buffer.alloc(100_000, 0x20) } }, /larger than/],
    [
      'too many keys',
      { bundles: { 'example.org': doc(Array.from({ length: 65 }, () => pub)) } },
      /more than 64 keys/,
    ],
  ])('refuses %s with ERR_SPIFFE_SVID_INVALID', (_name, response, reason) => {
    expect(() => parseJwtBundles(response)).toThrow(
      expect.objectContaining({ code: 'ERR_SPIFFE_SVID_INVALID', message: expect.stringMatching(reason) }),
    );
  });
});
