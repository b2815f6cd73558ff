import { afterEach, describe, expect, it } from 'vitest';
import type { BudgetLimits } from './budget-store.interface.js';
import { DAY_MS, MINUTE_MS } from './budget-windows.js';
import { MemoryBudgetStore } from './memory-budget.store.js';

// A fixed clock at the start of a UTC day, so window arithmetic is easy to read.
const T0 = 20_000 * DAY_MS;

const stores: MemoryBudgetStore[] = [];
function store(maxSubjects?: number): MemoryBudgetStore {
  const s = new MemoryBudgetStore(maxSubjects === undefined ? {} : { maxSubjects });
  stores.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

describe('MemoryBudgetStore options', () => {
  it.each([
    [{ maxSubjects: 0 }, /"maxSubjects" must be an integer/],
    [{ maxSubjects: 1.5 }, /"maxSubjects" must be an integer/],
    [{ maxSubject: 10 }, /unknown option "maxSubject"/],
  ])('refuses %j', (options, message) => {
    expect(() => new MemoryBudgetStore(options as never)).toThrow(message);
  });
});

describe('MemoryBudgetStore.reserve', () => {
  it.each<[string, BudgetLimits, number[], boolean[]]>([
    ['requests per minute', { requestsPerMinute: 2 }, [1, 1, 1], [true, true, false]],
    ['tokens per minute', { tokensPerMinute: 100 }, [60, 40, 1], [true, true, false]],
    ['tokens per day', { tokensPerDay: 100 }, [60, 41, 40], [true, false, true]],
    ['a call larger than the whole budget', { tokensPerMinute: 10 }, [11, 10], [false, true]],
    ['no limits at all', {}, [1e9, 1e9], [true, true]],
  ])('%s: a budget of N is N, and a refusal counts nothing', async (_name, limits, calls, expected) => {
    const s = store();
    const got: boolean[] = [];
    for (const tokens of calls) got.push((await s.reserve('alice', limits, tokens, T0)).allowed);
    expect(got).toEqual(expected);
  });

  it.each<[BudgetLimits, string, number]>([
    [{ requestsPerMinute: 1 }, 'requests-per-minute', 60],
    [{ tokensPerMinute: 1 }, 'tokens-per-minute', 60],
    [{ tokensPerDay: 1, requestsPerMinute: 1 }, 'tokens-per-day', 86_400],
  ])('%j refuses as %s, retry after %d s at the window start', async (limits, exceeded, after) => {
    const s = store();
    await s.reserve('bob', limits, 1, T0);
    const d = await s.reserve('bob', limits, 1, T0);
    expect(d).toMatchObject({ allowed: false, exceeded, retryAfterSeconds: after });
  });

  it('counts subjects apart', async () => {
    const s = store();
    expect((await s.reserve('a', { requestsPerMinute: 1 }, 0, T0)).allowed).toBe(true);
    expect((await s.reserve('b', { requestsPerMinute: 1 }, 0, T0)).allowed).toBe(true);
    expect((await s.reserve('a', { requestsPerMinute: 1 }, 0, T0)).allowed).toBe(false);
  });

  it('resets the minute window at the next epoch minute, the day window at the next UTC day', async () => {
    const s = store();
    const limits = { requestsPerMinute: 1, tokensPerMinute: 10, tokensPerDay: 15 };
    expect((await s.reserve('c', limits, 10, T0 + 59_999)).allowed).toBe(true);
    expect((await s.reserve('c', limits, 1, T0 + 59_999)).exceeded).toBe('requests-per-minute');
    // A new minute: requests and minute tokens start again, the day keeps its 10.
    expect((await s.reserve('c', limits, 5, T0 + MINUTE_MS)).allowed).toBe(true);
    expect((await s.reserve('c', limits, 1, T0 + 2 * MINUTE_MS)).exceeded).toBe('tokens-per-day');
    expect((await s.reserve('c', limits, 10, T0 + DAY_MS)).allowed).toBe(true);
  });

  it('reports the tightest token limit and the request window in the snapshot', async () => {
    const s = store();
    const d = await s.reserve(
      'd',
      { requestsPerMinute: 10, tokensPerMinute: 1000, tokensPerDay: 200 },
      50,
      T0 + 30_000,
    );
    expect(d.snapshot).toEqual({
      limitRequests: 10,
      remainingRequests: 9,
      resetRequestsSeconds: 30,
      limitTokens: 200,
      remainingTokens: 150,
      resetTokensSeconds: 86_370,
    });
  });
});

describe('MemoryBudgetStore.adjust', () => {
  const limits = { tokensPerMinute: 100, tokensPerDay: 1000 };

  it.each<[string, number, boolean, number]>([
    ['gives tokens back', -30, true, 80],
    ['spends within the limit', 50, true, 0],
    ['refuses (and does not apply) a delta past the limit', 51, false, 50],
    ['never counts below zero', -500, true, 100],
  ])('%s', async (_name, delta, allowed, remaining) => {
    const s = store();
    await s.reserve('e', limits, 50, T0);
    const d = await s.adjust('e', limits, delta, T0);
    expect(d.allowed).toBe(allowed);
    expect(d.snapshot.remainingTokens).toBe(remaining);
    if (!allowed) expect(d.exceeded).toBe('tokens-per-minute');
  });

  it('does not count a request', async () => {
    const s = store();
    await s.reserve('f', { requestsPerMinute: 1 }, 0, T0);
    expect((await s.adjust('f', { requestsPerMinute: 1 }, 5, T0)).allowed).toBe(true);
  });
});

describe('MemoryBudgetStore bounds', () => {
  it('holds no timer that keeps the process alive', () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    store();
    expect(timers()).toBe(before);
  });

  it('refuses a new subject when every slot holds a live one, and takes it once one expires', async () => {
    const s = store(2);
    await s.reserve('a', { requestsPerMinute: 5 }, 0, T0);
    await s.reserve('b', { requestsPerMinute: 5 }, 0, T0);
    await expect(s.reserve('c', { requestsPerMinute: 5 }, 0, T0)).rejects.toMatchObject({
      code: 'ERR_BUDGET_STORE_UNAVAILABLE',
    });
    // A live subject keeps its count: it was not evicted to make room.
    expect((await s.reserve('a', { requestsPerMinute: 2 }, 0, T0)).snapshot.remainingRequests).toBe(0);
    expect((await s.reserve('c', { requestsPerMinute: 5 }, 0, T0 + MINUTE_MS)).allowed).toBe(true);
    expect(s.size).toBeLessThanOrEqual(2);
  });

  it('forgets subjects whose windows ended, as new ones arrive', async () => {
    const s = store();
    for (let i = 0; i < 100; i++) await s.reserve(`s${i}`, { tokensPerMinute: 10 }, 1, T0);
    expect(s.size).toBe(100);
    for (let i = 0; i < 100; i++) await s.reserve(`t${i}`, { tokensPerMinute: 10 }, 1, T0 + MINUTE_MS);
    expect(s.size).toBe(100);
  });

  it('keeps a subject with a day budget until the day ends', async () => {
    const s = store(1);
    await s.reserve('a', { tokensPerDay: 10 }, 10, T0);
    await expect(s.reserve('b', { tokensPerDay: 10 }, 1, T0 + MINUTE_MS)).rejects.toMatchObject({
      code: 'ERR_BUDGET_STORE_UNAVAILABLE',
    });
    expect((await s.reserve('a', { tokensPerDay: 10 }, 1, T0 + 2 * MINUTE_MS)).allowed).toBe(false);
  });
});
