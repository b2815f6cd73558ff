import { describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { extractBearerToken, rawHeadersOf, repeatsAuthorization } from './bearer-token.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    return isShieldError(err) ? err.code : `unexpected ${String(err)}`;
  }
}

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';

describe('extractBearerToken (RFC 6750 §2.1 only)', () => {
  it.each([
    [`Bearer ${TOKEN}`],
    [`bearer ${TOKEN}`],
    [`BEARER   ${TOKEN}`],
    [`Bearer ${TOKEN} `],
    ['Bearer abc+/~-._=='],
  ])('reads case %#', (header) => {
    expect(extractBearerToken(header, 8192)).toBe(header.trim().split(/ +/)[1]);
  });

  it.each([
    [undefined, 'ERR_TOKEN_MISSING'],
    ['', 'ERR_TOKEN_MISSING'],
    [`Basic ${Buffer.from('a:b').toString('base64')}`, 'ERR_TOKEN_MISSING'],
    [`DPoP ${TOKEN}`, 'ERR_TOKEN_MISSING'],
    [`Bearer${TOKEN}`, 'ERR_TOKEN_MISSING'],
    ['Bearer', 'ERR_TOKEN_MALFORMED'],
    ['Bearer ', 'ERR_TOKEN_MALFORMED'],
    [`Bearer ${TOKEN} extra`, 'ERR_TOKEN_MALFORMED'],
    [`Bearer "${TOKEN}"`, 'ERR_TOKEN_MALFORMED'],
    [`Bearer ${TOKEN},Bearer ${TOKEN}`, 'ERR_TOKEN_MALFORMED'],
    [`Bearer\t${TOKEN}`, 'ERR_TOKEN_MALFORMED'],
    [`bearer \t${TOKEN}`, 'ERR_TOKEN_MALFORMED'],
    [`Bearer\t${'a'.repeat(50_000)}`, 'ERR_TOKEN_TOO_LARGE'],
    [[`Bearer ${TOKEN}`, `Bearer ${TOKEN}`], 'ERR_TOKEN_MALFORMED'],
    [`Bearer ${'a'.repeat(8193)}`, 'ERR_TOKEN_TOO_LARGE'],
    [`Bearer ${'a'.repeat(50_000)}`, 'ERR_TOKEN_TOO_LARGE'],
    [`Basic ${'a'.repeat(50_000)}`, 'ERR_TOKEN_MISSING'],
  ])('case %# is refused', (header, code) => {
    expect(codeOf(() => extractBearerToken(header as string | string[] | undefined, 8192))).toBe(code);
  });

  it('accepts a token of exactly maxTokenBytes', () => {
    expect(extractBearerToken(`Bearer ${'a'.repeat(8192)}`, 8192)).toHaveLength(8192);
  });
});

describe('repeatsAuthorization', () => {
  it.each([
    [['Host', 'x', 'Authorization', 'Bearer a'], false],
    [['Host', 'x'], false],
    [[], false],
    [['Authorization', 'Bearer a', 'authorization', 'Bearer b'], true],
    [['AUTHORIZATION', 'Bearer a', 'Cache-Control', 'no', 'aUtHoRiZaTiOn', 'Bearer a'], true],
    [['Authorization', 'Bearer a', 'Proxy-Authorization', 'Basic b'], false],
    [['Cache-Control', 'no', 'Last-Modified', 'x', 'Authorization', ''], false],
  ])('%j → %s', (raw, expected) => {
    expect(repeatsAuthorization(raw)).toBe(expected);
  });

  it('reads the raw headers of Express (req) and Fastify (req.raw) requests, nothing else', () => {
    const raw = ['Authorization', 'a', 'Authorization', 'b'];
    expect(repeatsAuthorization(rawHeadersOf({ rawHeaders: raw }))).toBe(true);
    expect(repeatsAuthorization(rawHeadersOf({ raw: { rawHeaders: raw } }))).toBe(true);
    expect(rawHeadersOf({ headers: { authorization: 'a' } })).toBeUndefined();
    expect(repeatsAuthorization(undefined)).toBe(false);
  });
});
