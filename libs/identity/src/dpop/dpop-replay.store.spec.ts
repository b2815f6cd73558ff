import { describe, expect, it } from 'vitest';
import { MemoryDpopReplayStore } from './dpop-replay.store.js';
import { RedisDpopReplayStore, type DpopRedisClient } from './redis-dpop-replay.store.js';

describe('MemoryDpopReplayStore', () => {
  it('accepts a key once while it lives, again after it expired', () => {
    let now = 1000;
    const store = new MemoryDpopReplayStore({ now: () => now });
    expect(store.claim('a', 500)).toBe(true);
    expect(store.claim('a', 500)).toBe(false);
    now += 499;
    expect(store.claim('a', 500)).toBe(false);
    now += 1;
    expect(store.claim('a', 500)).toBe(true);
  });

  it('is bounded: expired entries leave first, then a full store refuses (never forgets a live proof)', () => {
    let now = 0;
    const store = new MemoryDpopReplayStore({ maxEntries: 3, now: () => now });
    for (const k of ['a', 'b', 'c']) expect(store.claim(k, 100)).toBe(true);
    expect(() => store.claim('d', 100)).toThrow(
      expect.objectContaining({ code: 'ERR_DPOP_REPLAY_STORE_UNAVAILABLE' }),
    );
    // A flood of fresh keys cannot grow it, nor evict 'a' while 'a' could be replayed.
    for (let i = 0; i < 100; i++) expect(() => store.claim(`x${i}`, 100)).toThrow();
    expect(store.size).toBe(3);
    expect(store.claim('a', 100)).toBe(false);
    now = 100;
    expect(store.claim('d', 100)).toBe(true);
    expect(store.size).toBe(1);
  });

  it.each([0, -1, 1.5, 'x'])('refuses maxEntries %s', (maxEntries) => {
    expect(() => new MemoryDpopReplayStore({ maxEntries: maxEntries as number })).toThrow(TypeError);
  });
});

describe('RedisDpopReplayStore (unit: the command and the failure modes; the real Redis runs in test/)', () => {
  const client = (reply: () => Promise<'OK' | null>, calls: unknown[][] = []): DpopRedisClient => ({
    set: (...args: unknown[]) => {
      calls.push(args);
      return reply();
    },
  });

  it('sends SET key 1 PX ttl NX under the prefix; OK is fresh, null is a replay', async () => {
    const calls: unknown[][] = [];
    const fresh = new RedisDpopReplayStore(
      client(() => Promise.resolve('OK'), calls),
      { keyPrefix: 'p:' },
    );
    expect(await fresh.claim('k', 1500)).toBe(true);
    expect(calls).toEqual([['p:k', '1', 'PX', 1500, 'NX']]);
    const seen = new RedisDpopReplayStore(client(() => Promise.resolve(null)));
    expect(await seen.claim('k', 1500)).toBe(false);
  });

  it('a failing command is a 503 refusal, not an acceptance', async () => {
    const store = new RedisDpopReplayStore(client(() => Promise.reject(new Error('ECONNREFUSED'))));
    await expect(store.claim('k', 1000)).rejects.toMatchObject({ code: 'ERR_DPOP_REPLAY_STORE_UNAVAILABLE' });
  });

  it('a command that never answers is abandoned after commandTimeoutMs', async () => {
    const store = new RedisDpopReplayStore(
      client(() => new Promise(() => undefined)),
      { commandTimeoutMs: 20 },
    );
    await expect(store.claim('k', 1000)).rejects.toMatchObject({ code: 'ERR_DPOP_REPLAY_STORE_UNAVAILABLE' });
  });

  it.each([
    ['no client', undefined, {}],
    ['a long prefix', {}, { keyPrefix: 'x'.repeat(129) }],
    ['a zero timeout', {}, { commandTimeoutMs: 0 }],
  ])('refuses %s', (_name, redis, opts) => {
    const c = redis === undefined ? undefined : client(() => Promise.resolve('OK'));
    expect(() => new RedisDpopReplayStore(c as unknown as DpopRedisClient, opts)).toThrow(TypeError);
  });
});
