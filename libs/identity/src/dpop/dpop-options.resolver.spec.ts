import { describe, expect, it } from 'vitest';
import { resolveDpopOptions } from './dpop-options.resolver.js';
import { MemoryDpopReplayStore } from './dpop-replay.store.js';

describe('resolveDpopOptions', () => {
  it('fills every default and freezes the result', () => {
    const o = resolveDpopOptions({ origin: 'https://API.example:443' });
    expect([...o.origins]).toEqual(['https://api.example']);
    expect(o).toMatchObject({
      algorithms: ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256'],
      proofMaxAgeSeconds: 60,
      clockToleranceSeconds: 5,
      maxProofBytes: 4096,
      nonce: undefined,
    });
    expect(o.replayStore).toBeInstanceOf(MemoryDpopReplayStore);
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('copies the nonce secret and keeps the given store', () => {
    const secret = new Uint8Array(32).fill(1);
    const store = { claim: () => true };
    const o = resolveDpopOptions({
      origin: ['https://a.example', 'https://b.example:8443'],
      nonce: { secret },
      replayStore: store,
    });
    secret.fill(2);
    expect(o.nonce?.secret[0]).toBe(1);
    expect(o.nonce?.rotationMs).toBe(300_000);
    expect(o.replayStore).toBe(store);
    expect([...o.origins]).toEqual(['https://a.example', 'https://b.example:8443']);
  });

  it.each([
    ['no origin', {}, /dpop\.origin" is required/],
    ['an http origin', { origin: 'http://api.example' }, /dpop\.origin/],
    ['an origin with a path', { origin: 'https://api.example/v1' }, /dpop\.origin/],
    ['an origin with a query', { origin: 'https://api.example?x' }, /dpop\.origin/],
    ['an origin with user info', { origin: 'https://u@api.example' }, /dpop\.origin/],
    ['an empty origin list', { origin: [] }, /dpop\.origin/],
    ['a bad origin in a list', { origin: ['https://a.example', 'nope'] }, /dpop\.origin\[1\]/],
    ['HS256', { origin: 'https://a.example', algorithms: ['HS256'] }, /dpop\.algorithms/],
    ['alg none', { origin: 'https://a.example', algorithms: ['none'] }, /dpop\.algorithms/],
    ['an empty algorithm list', { origin: 'https://a.example', algorithms: [] }, /dpop\.algorithms/],
    ['a max age of 0', { origin: 'https://a.example', proofMaxAgeSeconds: 0 }, /proofMaxAgeSeconds/],
    ['a max age of an hour', { origin: 'https://a.example', proofMaxAgeSeconds: 3600 }, /proofMaxAgeSeconds/],
    [
      'a tolerance of 2 min',
      { origin: 'https://a.example', clockToleranceSeconds: 120 },
      /clockToleranceSeconds/,
    ],
    ['a 100 KB proof limit', { origin: 'https://a.example', maxProofBytes: 100_000 }, /maxProofBytes/],
    ['a store without claim()', { origin: 'https://a.example', replayStore: {} }, /replayStore/],
    [
      'a short nonce secret',
      { origin: 'https://a.example', nonce: { secret: 'short' } },
      /nonce\.secret" must be at least 32 bytes, got 5$/,
    ],
    [
      'a nonce rotation of 1 s',
      { origin: 'https://a.example', nonce: { secret: 'x'.repeat(32), rotationSeconds: 1 } },
      /rotationSeconds/,
    ],
    ['an unknown key', { origin: 'https://a.example', allowReplay: true }, /allowReplay/],
    [
      'an unknown nonce key',
      { origin: 'https://a.example', nonce: { secret: 'x'.repeat(32), optional: true } },
      /optional/,
    ],
  ])('refuses %s, naming the field', (_name, raw, message) => {
    expect(() => resolveDpopOptions(raw)).toThrow(message);
    expect(() => resolveDpopOptions(raw)).toThrow(TypeError);
  });

  it('never prints the nonce secret', () => {
    const secret = 'secret-value-that-is-too-short';
    expect(() => resolveDpopOptions({ origin: 'https://a.example', nonce: { secret } })).toThrow(
      expect.not.objectContaining({ message: expect.stringContaining(secret) }),
    );
  });
});
