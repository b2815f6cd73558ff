import { describe, expect, it } from 'vitest';
import { RedisBudgetStore } from './redis-budget.store.js';

// Only the options: the store's behaviour is proven against a real redis-server in
// test/llm-relay/budget-redis.e2e.spec.ts.
const client = { status: 'ready', evalsha: () => undefined, eval: () => undefined } as never;

describe('RedisBudgetStore options', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['no client', {}, /"client" must be an object/],
    ['not a client', { client: {} }, /"client" must be an ioredis/],
    ['an unknown key', { client, prefix: 'x' }, /unknown option "prefix"/],
    ['an empty keyPrefix', { client, keyPrefix: '' }, /"keyPrefix" must be a non-empty string/],
    ['a long keyPrefix', { client, keyPrefix: 'k'.repeat(101) }, /"keyPrefix" must be at most 100/],
    ['a zero timeout', { client, commandTimeoutMs: 0 }, /"commandTimeoutMs" must be an integer from 10/],
    ['an unknown clock', { client, clock: 'local' }, /"clock" must be one of "redis", "caller"/],
  ])('refuses %s', (_name, options, message) => {
    expect(() => new RedisBudgetStore(options as never)).toThrow(message);
  });

  it.each([
    ['short', 'alice'],
    ['200-character', 'x'.repeat(200)],
  ])('keys a %s subject as it is', (_name, subject) => {
    expect(new RedisBudgetStore({ client, keyPrefix: 'p:' }).keyOf(subject)).toBe(`p:${subject}`);
  });

  it('keys a longer subject by its SHA-256', () => {
    expect(new RedisBudgetStore({ client, keyPrefix: 'p:' }).keyOf('x'.repeat(201))).toMatch(
      /^p:sha256:[\w-]{43}$/,
    );
  });

  it.each(['end', 'close', 'reconnecting'])(
    'refuses at once, coded, while the client is %s',
    async (status) => {
      const down = { ...(client as object), status } as never;
      await expect(new RedisBudgetStore({ client: down }).reserve('a', {}, 1, 0)).rejects.toMatchObject({
        code: 'ERR_BUDGET_STORE_UNAVAILABLE',
      });
    },
  );
});
