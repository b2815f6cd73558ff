import { describe, expect, it } from 'vitest';
import { keySetHealth } from './health.js';
import type { KeySetState } from './tokens/issuer-key-set.js';

const T = Date.parse('2026-12-07T10:00:00Z');

describe('keySetHealth', () => {
  it.each<[string, Record<string, KeySetState>, boolean]>([
    ['every issuer ok', { a: 'ok', b: 'ok' }, true],
    ['no issuer', {}, true],
    ['one issuer stale', { a: 'ok', b: 'stale' }, false],
    ['one issuer never loaded', { a: 'unloaded' }, false],
  ])('%s', (_name, states, up) => {
    const stats = Object.fromEntries(Object.keys(states).map((k) => [k, { keys: 2, lastFetchOk: T }]));
    const health = keySetHealth(states, stats);
    expect(health.up).toBe(up);
    for (const [issuer, state] of Object.entries(states)) {
      expect(health.issuers[issuer]).toEqual({ state, keys: 2, lastFetchOk: '2026-12-07T10:00:00.000Z' });
    }
  });

  it('reports the last error and no fetch time when there was none', () => {
    const health = keySetHealth(
      { a: 'unloaded' },
      { a: { keys: 0, lastError: 'HTTP 503 from the JWKS URI' } },
    );
    expect(health.issuers.a).toEqual({ state: 'unloaded', keys: 0, lastError: 'HTTP 503 from the JWKS URI' });
  });
});
