import { afterEach, describe, expect, it } from 'vitest';
import { isShieldError, ShieldError } from '@inference-shield/core/internal';
import { RefreshingToken, type FetchedToken } from './refreshing-token.js';

/** A token endpoint under the test's control: each call waits for `answer()` or `fail()`. */
function endpoint() {
  const calls: { resolve: (t: FetchedToken) => void; reject: (e: unknown) => void; signal: AbortSignal }[] =
    [];
  return {
    calls,
    fetch: (signal: AbortSignal) =>
      new Promise<FetchedToken>((resolve, reject) => {
        calls.push({ resolve, reject, signal });
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    answer(i: number, accessToken: string, expiresInSeconds = 100) {
      calls[i]?.resolve({ accessToken, expiresInSeconds });
    },
    fail(
      i: number,
      err: unknown = new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', { detail: 'down' }),
    ) {
      calls[i]?.reject(err);
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));
let open: RefreshingToken[] = [];
afterEach(() => {
  for (const t of open) t.close();
  open = [];
});

function token(
  ep: ReturnType<typeof endpoint>,
  clock: { now: number },
  random = 0,
  onRefreshError?: (e: ShieldError) => void,
) {
  const t = new RefreshingToken({
    fetch: ep.fetch,
    timeoutMs: 10_000,
    now: () => clock.now,
    random: () => random,
    ...(onRefreshError ? { onRefreshError } : {}),
  });
  open.push(t);
  return t;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isShieldError(err) ? err.code : String(err);
}

describe('RefreshingToken', () => {
  it('asks once for concurrent callers, then serves the cached token', async () => {
    const ep = endpoint();
    const clock = { now: 0 };
    const t = token(ep, clock);
    const all = Promise.all(Array.from({ length: 10 }, () => t.get()));
    await tick();
    expect(ep.calls).toHaveLength(1);
    ep.answer(0, 'tok-1');
    expect(await all).toEqual(Array(10).fill('tok-1'));
    clock.now = 50_000;
    expect(await t.get()).toBe('tok-1');
    expect(t.stats).toMatchObject({ tokenRequests: 1, tokensObtained: 1 });
  });

  it.each([
    // random 0: refresh at 80 % of the lifetime; random 1: at 70 % (jitter spreads replicas).
    [0, 79_000, 81_000],
    [1, 69_000, 71_000],
  ])(
    'refreshes ahead of expiry (jitter %d): not at %d ms, at %d ms, keeping the old token meanwhile',
    async (random, before, after) => {
      const ep = endpoint();
      const clock = { now: 0 };
      const t = token(ep, clock, random);
      const first = t.get();
      await tick();
      ep.answer(0, 'tok-1');
      await first;
      clock.now = before;
      expect(await t.get()).toBe('tok-1');
      expect(ep.calls).toHaveLength(1);
      clock.now = after;
      expect(await t.get()).toBe('tok-1');
      expect(ep.calls).toHaveLength(2);
      expect(await t.get()).toBe('tok-1'); // single-flight: still one refresh in flight
      expect(ep.calls).toHaveLength(2);
      ep.answer(1, 'tok-2');
      await tick();
      expect(await t.get()).toBe('tok-2');
    },
  );

  it('a failed refresh keeps the valid token and retries after a backoff', async () => {
    const ep = endpoint();
    const clock = { now: 0 };
    const errors: string[] = [];
    const t = token(ep, clock, 0, (e) => errors.push(e.code));
    const first = t.get();
    await tick();
    ep.answer(0, 'tok-1');
    await first;
    clock.now = 81_000;
    expect(await t.get()).toBe('tok-1');
    ep.fail(1);
    await tick();
    expect(errors).toEqual(['ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE']);
    expect(t.stats).toMatchObject({ refreshFailures: 1, tokenFailures: 1 });
    // Within the backoff (250-500 ms after the first failure): no new request.
    clock.now = 81_200;
    expect(await t.get()).toBe('tok-1');
    expect(ep.calls).toHaveLength(2);
    clock.now = 81_600;
    expect(await t.get()).toBe('tok-1');
    expect(ep.calls).toHaveLength(3);
    ep.answer(2, 'tok-2');
    await tick();
    expect(await t.get()).toBe('tok-2');
  });

  it('past the expiry margin with the endpoint down: a typed error, then fail-fast during the backoff', async () => {
    const ep = endpoint();
    const clock = { now: 0 };
    const t = token(ep, clock);
    const first = t.get();
    await tick();
    ep.answer(0, 'tok-1');
    await first;
    // 10 % of the lifetime before expiry the token is not sent any more.
    clock.now = 90_000;
    const p = t.get();
    await tick();
    ep.fail(1);
    expect(await codeOf(p)).toBe('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
    expect(await codeOf(t.get())).toBe('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
    expect(ep.calls).toHaveLength(2);
    clock.now = 91_000;
    const again = t.get();
    await tick();
    expect(ep.calls).toHaveLength(3);
    ep.answer(2, 'tok-2');
    expect(await again).toBe('tok-2');
  });

  it('refreshSoon (a rotated certificate) asks in the background and keeps the token meanwhile', async () => {
    const ep = endpoint();
    const clock = { now: 0 };
    const t = token(ep, clock);
    const first = t.get();
    await tick();
    ep.answer(0, 'tok-1');
    await first;
    t.refreshSoon();
    expect(await t.get()).toBe('tok-1');
    await tick();
    expect(ep.calls).toHaveLength(2);
    ep.answer(1, 'tok-2');
    await tick();
    expect(await t.get()).toBe('tok-2');
  });

  it.each([
    ['an empty token', { accessToken: '', expiresInSeconds: 60 }],
    ['a token with a line break', { accessToken: 'a\r\nb', expiresInSeconds: 60 }],
    ['no lifetime', { accessToken: 'tok', expiresInSeconds: 0 }],
    ['a negative lifetime', { accessToken: 'tok', expiresInSeconds: -5 }],
  ])('refuses %s from the endpoint', async (_name, answer) => {
    const ep = endpoint();
    const t = token(ep, { now: 0 });
    const p = t.get();
    await tick();
    ep.calls[0]?.resolve(answer);
    expect(await codeOf(p)).toBe('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
  });

  it('a non-Shield failure becomes ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE, cause kept', async () => {
    const ep = endpoint();
    const t = token(ep, { now: 0 });
    const p = t.get().catch((e: unknown) => e);
    await tick();
    const cause = new TypeError('fetch failed');
    ep.fail(0, cause);
    const err = await p;
    expect(isShieldError(err) && err.code).toBe('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
    expect((err as Error).cause).toBe(cause);
  });

  it("a caller's abort rejects that caller only; the shared request goes on", async () => {
    const ep = endpoint();
    const t = token(ep, { now: 0 });
    const ac = new AbortController();
    const aborted = t.get(ac.signal).catch((e: unknown) => e);
    const other = t.get();
    await tick();
    ac.abort(new Error('caller left'));
    expect(((await aborted) as Error).message).toBe('caller left');
    ep.answer(0, 'tok-1');
    expect(await other).toBe('tok-1');
    expect(ep.calls[0]?.signal.aborted).toBe(false);
  });

  it('bounds a token request by timeoutMs (the request gets an aborted signal)', async () => {
    const ep = endpoint();
    const t = new RefreshingToken({ fetch: ep.fetch, timeoutMs: 20 });
    open.push(t);
    expect(await codeOf(t.get())).toBe('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
    expect(ep.calls[0]?.signal.aborted).toBe(true);
  });
});
