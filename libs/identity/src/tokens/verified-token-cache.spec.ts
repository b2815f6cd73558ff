import type { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ResolvedKey } from './issuer-key-set.js';
import { VerifiedTokenCache, type CachedVerification } from './verified-token-cache.js';
import type { VerifiedToken } from './verified-token.interface.js';

const publicKeyStandIn = {} as webcrypto.CryptoKey; // only its identity matters here

function entry(
  issuer: string,
  kid: string | undefined,
  validUntilMs: number,
  symmetric = false,
): CachedVerification {
  const key: ResolvedKey = {
    key: symmetric ? new Uint8Array(32) : publicKeyStandIn,
    check: () => false,
    ...(kid !== undefined ? { kid } : {}),
  };
  const token = {
    issuer,
    subject: 's',
    method: 'oidc',
    audience: [],
    scopes: [],
    claims: {},
    expiresAt: 0,
  } as VerifiedToken;
  return { token, key, validUntilMs };
}

describe('VerifiedTokenCache', () => {
  it('keys by the SHA-256 of the token, never the token', () => {
    const key = VerifiedTokenCache.keyOf('eyJhbGciOi.secret.token');
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(key).not.toContain('eyJ');
  });

  it('serves an entry until its time, then drops it', () => {
    const cache = new VerifiedTokenCache(10);
    cache.set('a', entry('https://i', 'k', 1000));
    expect(cache.get('a', 999)).toBeDefined();
    expect(cache.get('a', 1000)).toBeUndefined();
    expect(cache.size).toBe(0);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 1, misses: 1 });
  });

  it('evicts the oldest entry beyond its size', () => {
    const cache = new VerifiedTokenCache(2);
    for (const name of ['a', 'b', 'c']) cache.set(name, entry('https://i', 'k', 1000));
    expect(cache.size).toBe(2);
    expect(cache.get('a', 0)).toBeUndefined();
    expect(cache.get('c', 0)).toBeDefined();
  });

  it.each([1, 2, 3, 10, 11])('never holds more than %i entries, and keeps a token in use', (max) => {
    const cache = new VerifiedTokenCache(max);
    cache.set('hot', entry('https://i', 'k', 1000));
    for (let i = 0; i < max * 7; i++) {
      cache.set(`t${i}`, entry('https://i', 'k', 1000));
      expect(cache.size).toBeLessThanOrEqual(max);
      // The newest entry is always there; a token reused at least once per generation stays.
      expect(cache.get(`t${i}`, 0)).toBeDefined();
      if (max > 2) expect(cache.get('hot', 0)).toBeDefined();
    }
    // At least the younger generation (half of them) is always full.
    expect(cache.size).toBeGreaterThanOrEqual(Math.ceil(max / 2));
    if (max > 1) expect(cache.get('t0', 0)).toBeUndefined();
  });

  it('drops the entries of the keys that left the set, and kid-less ones of that issuer', () => {
    const cache = new VerifiedTokenCache(10);
    cache.set('gone', entry('https://i', 'old', 1000));
    cache.set('kept', entry('https://i', 'new', 1000));
    cache.set('nokid', entry('https://i', undefined, 1000));
    cache.set('hs', entry('https://i', undefined, 1000, true));
    cache.set('other-issuer', entry('https://j', 'old', 1000));
    cache.dropKeys('https://i', new Set(['old']));
    expect([...['gone', 'kept', 'nokid', 'hs', 'other-issuer']].filter((k) => cache.get(k, 0))).toEqual([
      'kept',
      'hs',
      'other-issuer',
    ]);
  });

  it('does nothing with 0 entries allowed', () => {
    const cache = new VerifiedTokenCache(0);
    cache.set('a', entry('https://i', 'k', 1000));
    expect(cache.get('a', 0)).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
