import { describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { MemorySamlReplayCache } from './saml-replay-cache.js';
import { MemorySamlRequestStore } from './saml-request-store.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('MemorySamlReplayCache', () => {
  it('accepts an ID once until it expires', async () => {
    const c = clock();
    const cache = new MemorySamlReplayCache(10, c.now);
    const until = new Date(c.now() + 1000);
    expect(await cache.consumeOnce('a', until)).toBe(true);
    expect(await cache.consumeOnce('a', until)).toBe(false);
    expect(await cache.consumeOnce('b', until)).toBe(true);
    c.advance(1000);
    // Expired: the assertion itself is refused as expired before the cache is asked.
    expect(await cache.consumeOnce('a', new Date(c.now() + 1000))).toBe(true);
  });

  it('when full of unexpired IDs, refuses new ones (503) instead of evicting', async () => {
    const c = clock();
    const cache = new MemorySamlReplayCache(2, c.now);
    const until = new Date(c.now() + 1000);
    await cache.consumeOnce('a', until);
    await cache.consumeOnce('b', until);
    const err = await cache.consumeOnce('c', until).catch((e: unknown) => e);
    expect(isShieldError(err) && err.code).toBe('ERR_NOT_READY');
    // The held IDs are still refused: nothing was evicted.
    expect(await cache.consumeOnce('a', until)).toBe(false);
  });

  it('sweeps expired IDs when full', async () => {
    const c = clock();
    const cache = new MemorySamlReplayCache(2, c.now);
    await cache.consumeOnce('a', new Date(c.now() + 10));
    await cache.consumeOnce('b', new Date(c.now() + 10_000));
    c.advance(10);
    expect(await cache.consumeOnce('c', new Date(c.now() + 1000))).toBe(true);
    expect(cache.size).toBe(2);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new MemorySamlReplayCache(0)).toThrow(TypeError);
  });
});

describe('MemorySamlRequestStore', () => {
  it('returns the IdP of a pending request once', async () => {
    const c = clock();
    const store = new MemorySamlRequestStore(10, c.now);
    await store.save('r1', 'corp', new Date(c.now() + 1000));
    expect(await store.take('r1')).toBe('corp');
    expect(await store.take('r1')).toBeUndefined();
    expect(await store.take('nope')).toBeUndefined();
  });

  it('forgets an expired request', async () => {
    const c = clock();
    const store = new MemorySamlRequestStore(10, c.now);
    await store.save('r1', 'corp', new Date(c.now() + 1000));
    c.advance(1000);
    expect(await store.take('r1')).toBeUndefined();
  });

  it('when full, drops the oldest pending request (a login flood cannot grow memory)', async () => {
    const c = clock();
    const store = new MemorySamlRequestStore(2, c.now);
    const until = new Date(c.now() + 1000);
    await store.save('r1', 'corp', until);
    await store.save('r2', 'corp', until);
    await store.save('r3', 'corp', until);
    expect(store.size).toBe(2);
    expect(await store.take('r1')).toBeUndefined();
    expect(await store.take('r3')).toBe('corp');
  });
});

describe('MemorySamlRequestStore: minted request IDs (nothing stored until answered)', () => {
  it('makes an xs:ID that names its IdP, stores nothing, and is taken once', async () => {
    const c = clock();
    const store = new MemorySamlRequestStore(10, c.now);
    const id = store.mint('corp', new Date(c.now() + 60_000));
    expect(id).toMatch(/^_[A-Za-z0-9_.-]+$/);
    expect(id.endsWith('.corp')).toBe(true);
    expect(store.size).toBe(0);
    expect(await store.take(id)).toBe('corp');
    expect(await store.take(id)).toBeUndefined();
  });

  it('refuses an expired, altered, re-labelled or foreign ID', async () => {
    const c = clock();
    const store = new MemorySamlRequestStore(10, c.now);
    const id = store.mint('corp', new Date(c.now() + 60_000));
    const body = id.slice(1, id.indexOf('.'));
    const flipped = body.slice(0, 10) + (body[10] === 'A' ? 'B' : 'A') + body.slice(11);
    expect(await store.take(`_${flipped}.corp`)).toBeUndefined();
    // The MAC covers the IdP: the same ID presented as another IdP's is not ours.
    expect(await store.take(`_${body}.partner`)).toBeUndefined();
    // Another instance (another process, a restart) has another key.
    expect(await new MemorySamlRequestStore(10, c.now).take(id)).toBeUndefined();
    c.advance(60_000);
    expect(await store.take(id)).toBeUndefined();
  });

  it('a flood of minted logins pushes out nothing, saved or minted', async () => {
    const c = clock();
    const store = new MemorySamlRequestStore(2, c.now);
    const until = new Date(c.now() + 60_000);
    const real = store.mint('corp', until);
    await store.save('r1', 'corp', until);
    for (let i = 0; i < 1000; i++) store.mint('corp', until);
    expect(store.size).toBe(1);
    expect(await store.take('r1')).toBe('corp');
    expect(await store.take(real)).toBe('corp');
  });

  it('keeps answered IDs until they expire; full of unexpired ones, it refuses (never forgets one)', async () => {
    const c = clock();
    const store = new MemorySamlRequestStore(2, c.now);
    const ids = [1, 2, 3].map(() => store.mint('corp', new Date(c.now() + 1000)));
    for (const id of ids.slice(0, 2)) expect(await store.take(id)).toBe('corp');
    expect(store.size).toBe(2);
    c.advance(999);
    await expect(store.take(ids[2] as string)).rejects.toMatchObject({ code: 'ERR_NOT_READY' });
    // Still answered once only: the first ID is not forgotten to make room.
    expect(await store.take(ids[0] as string)).toBeUndefined();
    c.advance(1);
    const later = store.mint('corp', new Date(c.now() + 1000));
    expect(await store.take(later)).toBe('corp');
  });

  it('refuses to mint for a name that is not an IdP name', () => {
    expect(() => new MemorySamlRequestStore().mint('Corp.Evil', new Date())).toThrow(TypeError);
    expect(() => new MemorySamlRequestStore().mint('-corp', new Date())).toThrow(TypeError);
  });
});
