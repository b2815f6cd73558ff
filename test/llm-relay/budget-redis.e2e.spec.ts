/**
 * RedisBudgetStore against a real redis-server: replicas (two stores, two connections) share one
 * budget atomically, windows reset, the script survives SCRIPT FLUSH, and a Redis that is gone or
 * stalled is a coded 503 within the command timeout, never a hang.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { isShieldError } from '@inference-shield/core';
import {
  MemoryBudgetStore,
  RedisBudgetStore,
  type BudgetDecision,
  type BudgetLimits,
  type BudgetSnapshot,
} from '@inference-shield/llm-relay';
import { startRedis, type RunningRedis } from '../support/redis-server.js';

// A fixed caller clock at the start of a UTC minute, so no test straddles a window by chance.
const T0 = 29_500_000 * 60_000;

let redis: RunningRedis;
const clients: Redis[] = [];

function client(): Redis {
  const c = redis.client();
  clients.push(c);
  return c;
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis.stop();
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    return isShieldError(err) ? err.code : `uncoded: ${String(err)}`;
  }
}

describe('RedisBudgetStore: replicas share one budget', () => {
  it.each<[string, BudgetLimits, number, number, Partial<BudgetSnapshot>]>([
    ['requests per minute', { requestsPerMinute: 37 }, 0, 37, { remainingRequests: 0 }],
    ['tokens per minute', { tokensPerMinute: 1000 }, 7, 142, { remainingTokens: 6 }],
    ['tokens per day', { tokensPerDay: 500 }, 3, 166, { remainingTokens: 2 }],
    [
      'the tightest of three',
      { requestsPerMinute: 90, tokensPerMinute: 400, tokensPerDay: 10_000 },
      5,
      80,
      { remainingRequests: 10, remainingTokens: 0 },
    ],
  ])(
    '%s: two stores on two connections, 240 concurrent calls, never more than N',
    async (name, limits, tokens, n, remaining) => {
      const a = new RedisBudgetStore({ client: client(), clock: 'caller', keyPrefix: 'race:' });
      const b = new RedisBudgetStore({ client: client(), clock: 'caller', keyPrefix: 'race:' });
      const calls: Promise<BudgetDecision>[] = [];
      for (let i = 0; i < 240; i++)
        calls.push((i % 2 === 0 ? a : b).reserve(`race-${name}`, limits, tokens, T0));
      const decisions = await Promise.all(calls);
      expect(decisions.filter((d) => d.allowed)).toHaveLength(n);
      // The refusals counted nothing: the budget is exactly spent, not overspent.
      const last = await a.adjust(`race-${name}`, limits, 0, T0);
      expect(last.snapshot).toMatchObject(remaining);
    },
  );

  it('adjusts concurrently without losing an update', async () => {
    const a = new RedisBudgetStore({ client: client(), clock: 'caller' });
    const b = new RedisBudgetStore({ client: client(), clock: 'caller' });
    const limits = { tokensPerMinute: 10_000 };
    await a.reserve('adj', limits, 5000, T0);
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        (i % 2 === 0 ? a : b).adjust('adj', limits, i % 4 < 2 ? -10 : 30, T0),
      ),
    );
    // 50 × -10 and 50 × +30: 5000 + 1000 = 6000 spent.
    expect((await a.adjust('adj', limits, 0, T0)).snapshot.remainingTokens).toBe(4000);
  });
});

describe('RedisBudgetStore: windows and decisions', () => {
  const limits = { requestsPerMinute: 1, tokensPerMinute: 10, tokensPerDay: 15 };

  it('resets the minute at the next epoch minute and the day at the next UTC day', async () => {
    const s = new RedisBudgetStore({ client: client(), clock: 'caller' });
    expect((await s.reserve('win', limits, 10, T0 + 59_999)).allowed).toBe(true);
    expect((await s.reserve('win', limits, 1, T0 + 59_999)).exceeded).toBe('requests-per-minute');
    expect((await s.reserve('win', limits, 5, T0 + 60_000)).allowed).toBe(true);
    const day = await s.reserve('win', limits, 1, T0 + 120_000);
    expect(day).toMatchObject({ allowed: false, exceeded: 'tokens-per-day' });
    expect(day.retryAfterSeconds).toBeGreaterThan(60);
    const nextDay = Math.ceil((T0 + 1) / 86_400_000) * 86_400_000;
    expect((await s.reserve('win', limits, 10, nextDay)).allowed).toBe(true);
  });

  it('refuses a positive adjust past the limit without applying it; a negative one always applies', async () => {
    const s = new RedisBudgetStore({ client: client(), clock: 'caller' });
    const l = { tokensPerMinute: 100 };
    await s.reserve('adj2', l, 60, T0);
    expect(await s.adjust('adj2', l, 41, T0)).toMatchObject({
      allowed: false,
      exceeded: 'tokens-per-minute',
    });
    expect((await s.adjust('adj2', l, -200, T0)).snapshot.remainingTokens).toBe(100);
    expect((await s.adjust('adj2', l, 100, T0)).allowed).toBe(true);
  });

  it('decides as the in-memory store does, call for call', async () => {
    const s = new RedisBudgetStore({ client: client(), clock: 'caller', keyPrefix: 'same:' });
    const m = new MemoryBudgetStore();
    const l = { requestsPerMinute: 4, tokensPerMinute: 50, tokensPerDay: 120 };
    const steps: [string, number, number][] = [
      ['r', 20, 0],
      ['r', 20, 1000],
      ['a', 15, 2000],
      ['r', 1, 3000],
      ['a', -30, 4000],
      ['r', 30, 5000],
      ['r', 1, 6000],
      ['r', 40, 61_000],
      ['r', 40, 62_000],
      ['a', 5, 63_000],
    ];
    for (const [op, tokens, at] of steps) {
      const call = (st: RedisBudgetStore | MemoryBudgetStore) =>
        op === 'r' ? st.reserve('same', l, tokens, T0 + at) : st.adjust('same', l, tokens, T0 + at);
      expect(await call(s)).toEqual(await call(m));
    }
    await m.close();
  });

  it('on the Redis clock, places calls in windows of the server time and reports the reset', async () => {
    const s = new RedisBudgetStore({ client: client() });
    // nowMs is ignored on the Redis clock: a far-off value changes nothing.
    const d = await s.reserve('server-clock', { requestsPerMinute: 5, tokensPerDay: 100 }, 10, 0);
    expect(d.allowed).toBe(true);
    expect(d.snapshot.remainingRequests).toBe(4);
    expect(d.snapshot.resetRequestsSeconds).toBeGreaterThan(0);
    expect(d.snapshot.resetRequestsSeconds).toBeLessThanOrEqual(60);
    expect(d.snapshot.resetTokensSeconds).toBeLessThanOrEqual(86_400);
  });
});

describe('RedisBudgetStore: keys', () => {
  it('prefixes every key, and gives it a TTL a little past its window', async () => {
    const c = client();
    const s = new RedisBudgetStore({ client: c, keyPrefix: 'ttl-test:' });
    await s.reserve('minute-only', { requestsPerMinute: 5 }, 1, 0);
    await s.reserve('with-day', { tokensPerDay: 5 }, 1, 0);
    expect((await c.keys('ttl-test:*')).sort()).toEqual(['ttl-test:minute-only', 'ttl-test:with-day']);
    const minuteTtl = await c.pttl('ttl-test:minute-only');
    expect(minuteTtl).toBeGreaterThan(0);
    expect(minuteTtl).toBeLessThanOrEqual(65_000);
    const dayTtl = await c.pttl('ttl-test:with-day');
    expect(dayTtl).toBeGreaterThan(0);
    expect(dayTtl).toBeLessThanOrEqual(86_405_000);
  });

  it('keys a long subject by its hash, so a key stays small', async () => {
    const c = client();
    const s = new RedisBudgetStore({ client: c, keyPrefix: 'long:' });
    const subject = 'p'.repeat(5000);
    await s.reserve(subject, { requestsPerMinute: 5 }, 1, 0);
    const key = `long:sha256:${createHash('sha256').update(subject).digest('base64url')}`;
    expect(await c.keys('long:*')).toEqual([key]);
    expect(s.keyOf(subject)).toBe(key);
  });
});

describe('RedisBudgetStore: the script cache', () => {
  async function cachedScripts(c: Redis): Promise<number> {
    const m = /number_of_cached_scripts:(\d+)/.exec(await c.info('memory'));
    return Number(m?.[1] ?? Number.NaN);
  }

  it('reloads the script after SCRIPT FLUSH (EVALSHA answers NOSCRIPT, EVAL follows)', async () => {
    const c = client();
    const s = new RedisBudgetStore({ client: c, clock: 'caller' });
    const l = { requestsPerMinute: 2 };
    expect((await s.reserve('flush', l, 0, T0)).allowed).toBe(true);
    await c.script('FLUSH');
    expect(await cachedScripts(c)).toBe(0);
    expect((await s.reserve('flush', l, 0, T0)).allowed).toBe(true);
    expect(await cachedScripts(c)).toBe(1);
    // The count survived the flush: the budget of 2 is spent.
    expect((await s.reserve('flush', l, 0, T0)).allowed).toBe(false);
  });
});

describe('RedisBudgetStore: Redis unavailable', () => {
  it('a stalled Redis (CLIENT PAUSE) is ERR_BUDGET_STORE_UNAVAILABLE within the command timeout', async () => {
    const admin = client();
    const s = new RedisBudgetStore({ client: client(), commandTimeoutMs: 200 });
    expect((await s.reserve('pause', { requestsPerMinute: 100 }, 0, 0)).allowed).toBe(true);
    await admin.client('PAUSE', 1500, 'ALL');
    expect(await codeOf(s.reserve('pause', { requestsPerMinute: 100 }, 0, 0))).toBe(
      'ERR_BUDGET_STORE_UNAVAILABLE',
    );
    expect(await codeOf(s.adjust('pause', { requestsPerMinute: 100 }, -1, 0))).toBe(
      'ERR_BUDGET_STORE_UNAVAILABLE',
    );
  }, 10_000);

  it('a stopped Redis is ERR_BUDGET_STORE_UNAVAILABLE, never a hang; a later server is used again', async () => {
    const own = await startRedis();
    try {
      const c = own.client();
      clients.push(c);
      const s = new RedisBudgetStore({ client: c, commandTimeoutMs: 500 });
      expect((await s.reserve('stop', { requestsPerMinute: 100 }, 0, 0)).allowed).toBe(true);
      await own.stop();
      for (let i = 0; i < 5; i++) {
        expect(await codeOf(s.reserve('stop', { requestsPerMinute: 100 }, 0, 0))).toBe(
          'ERR_BUDGET_STORE_UNAVAILABLE',
        );
      }
    } finally {
      await own.stop();
    }
  }, 10_000);

  it('a client that was never able to connect is ERR_BUDGET_STORE_UNAVAILABLE', async () => {
    const own = await startRedis();
    const url = own.url;
    await own.stop();
    const { Redis: RedisClient } = await import('ioredis');
    const c = new RedisClient(url, { maxRetriesPerRequest: null, connectTimeout: 10_000 });
    c.on('error', () => undefined);
    try {
      const s = new RedisBudgetStore({ client: c, commandTimeoutMs: 300 });
      // The offline queue would hold this command forever (maxRetriesPerRequest: null): the store does not wait.
      expect(await codeOf(s.reserve('never', { requestsPerMinute: 1 }, 0, 0))).toBe(
        'ERR_BUDGET_STORE_UNAVAILABLE',
      );
    } finally {
      c.disconnect();
    }
  }, 10_000);
});
