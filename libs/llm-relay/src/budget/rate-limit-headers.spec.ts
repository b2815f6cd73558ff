import { describe, expect, it } from 'vitest';
import { budgetHeaders, formatResetDuration, rateLimitHeaders, retryAfter } from './rate-limit-headers.js';

describe('formatResetDuration (OpenAI / Go duration format)', () => {
  it.each<[number, string]>([
    [0, '0s'],
    [-1, '0s'],
    [Number.NaN, '0s'],
    [0.02, '20ms'],
    [0.0001, '1ms'],
    [1, '1s'],
    [1.5, '1.5s'],
    [8.64, '8.64s'],
    [59.999, '59.999s'],
    [60, '1m0s'],
    [360, '6m0s'],
    [90.5, '1m30.5s'],
    [3600, '1h0m0s'],
    [86_399.999, '23h59m59.999s'],
  ])('%d s is "%s"', (seconds, expected) => {
    expect(formatResetDuration(seconds)).toBe(expected);
  });
});

describe('rateLimitHeaders', () => {
  it('writes the six headers of a snapshot', () => {
    expect(
      rateLimitHeaders({
        limitRequests: 60,
        remainingRequests: 59,
        resetRequestsSeconds: 1,
        limitTokens: 150_000,
        remainingTokens: 149_984,
        resetTokensSeconds: 360,
      }),
    ).toEqual({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-limit-tokens': '150000',
      'x-ratelimit-remaining-tokens': '149984',
      'x-ratelimit-reset-tokens': '6m0s',
    });
  });

  it.each([
    [{}, {}],
    [
      { limitTokens: 10, remainingTokens: -3 },
      { 'x-ratelimit-limit-tokens': '10', 'x-ratelimit-remaining-tokens': '0' },
    ],
  ])('writes only the limits in force: %j', (snapshot, expected) => {
    expect(rateLimitHeaders(snapshot)).toEqual(expected);
  });
});

describe('retryAfter and budgetHeaders', () => {
  it.each<[number | undefined, string]>([
    [0.2, '1'],
    [1, '1'],
    [1.01, '2'],
    [59.5, '60'],
    [undefined, '1'],
  ])('a refusal retrying after %s s says Retry-After: %s', (seconds, expected) => {
    const decision = {
      allowed: false,
      exceeded: 'requests-per-minute' as const,
      ...(seconds !== undefined ? { retryAfterSeconds: seconds } : {}),
      snapshot: { limitRequests: 1, remainingRequests: 0, resetRequestsSeconds: seconds ?? 1 },
    };
    expect(retryAfter(decision)).toBe(expected);
    expect(budgetHeaders(decision)['retry-after']).toBe(expected);
  });

  it('an allowed call has no Retry-After', () => {
    expect(budgetHeaders({ allowed: true, snapshot: { limitRequests: 2 } })).toEqual({
      'x-ratelimit-limit-requests': '2',
    });
  });
});
