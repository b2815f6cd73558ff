import { describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ShieldError } from '@inference-shield/core/internal';
import { resolveDpopOptions } from './dpop-options.resolver.js';
import { accessTokenHash } from './dpop-proof.js';
import type { DpopReplayStore } from './dpop-replay.store.js';
import { DpopVerifier, type DpopRequest } from './dpop.verifier.js';

const NOW_MS = 1_800_000_000_000;
const TOKEN = 'header.payload.signature';

async function fixture() {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  const proof = (jti: string) =>
    new SignJWT({
      jti,
      htm: 'POST',
      htu: 'https://api.example/x',
      iat: NOW_MS / 1000,
      ath: accessTokenHash(TOKEN),
    })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
      .sign(privateKey);
  return { jkt, proof };
}

function verifierWith(store: DpopReplayStore, extra: Record<string, unknown> = {}) {
  return new DpopVerifier(
    resolveDpopOptions({ origin: 'https://api.example', replayStore: store, ...extra }),
    () => NOW_MS,
  );
}

const request = (proof: DpopRequest['proof']): DpopRequest => ({
  proof,
  method: 'POST',
  target: '/x',
  request: {},
});

describe('DpopVerifier', () => {
  it('claims each proof once per key in the store; the same request decided twice counts once', async () => {
    const { jkt, proof } = await fixture();
    const claims: [string, number][] = [];
    const seen = new Set<string>();
    const store: DpopReplayStore = {
      claim(key, ttl) {
        claims.push([key, ttl]);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      },
    };
    const v = verifierWith(store);
    const one = request(await proof('a'));
    expect(await v.check(one, TOKEN, jkt)).toBe(jkt);
    // The early header-only check and the guard decide the same request object.
    expect(await v.check(one, TOKEN, jkt)).toBe(jkt);
    expect(claims).toHaveLength(1);
    // Keys are a fixed-length hash; they outlive the iat window (60 + 2 * 5 + 1 s).
    expect(claims[0]?.[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(claims[0]?.[1]).toBe(71_000);
    // Another request with the same proof is a replay.
    await expect(v.check(request(one.proof), TOKEN, jkt)).rejects.toMatchObject({
      code: 'ERR_DPOP_PROOF_REPLAYED',
    });
  });

  it.each([
    ['a store that throws', () => new Error('ECONNRESET')],
    ['a store that rejects with another code', () => new ShieldError('ERR_NOT_READY')],
  ])('%s → 503 ERR_DPOP_REPLAY_STORE_UNAVAILABLE, never accepted', async (_name, failure) => {
    const { jkt, proof } = await fixture();
    const v = verifierWith({
      claim: () => {
        throw failure();
      },
    });
    await expect(v.check(request(await proof('b')), TOKEN, jkt)).rejects.toMatchObject({
      code: 'ERR_DPOP_REPLAY_STORE_UNAVAILABLE',
      status: 503,
    });
  });

  it('no proof → ERR_DPOP_PROOF_MISSING; a refused header is passed on', async () => {
    const { jkt } = await fixture();
    const v = verifierWith({ claim: () => true });
    await expect(v.check(request(undefined), TOKEN, jkt)).rejects.toMatchObject({
      code: 'ERR_DPOP_PROOF_MISSING',
    });
    const repeated = new ShieldError('ERR_DPOP_PROOF_INVALID');
    await expect(v.check(request(repeated), TOKEN, jkt)).rejects.toBe(repeated);
  });

  it('a refused proof claims nothing in the store', async () => {
    const { proof } = await fixture();
    let claimed = 0;
    const v = verifierWith({ claim: () => ++claimed > 0 });
    await expect(v.check(request(await proof('c')), TOKEN, 'x'.repeat(43))).rejects.toMatchObject({
      code: 'ERR_DPOP_BINDING_MISMATCH',
    });
    expect(claimed).toBe(0);
  });

  it('the challenge names the algorithms, and the current nonce when nonces are on', () => {
    expect(verifierWith({ claim: () => true }).challenge()).toEqual({
      algs: 'ES256 EdDSA Ed25519 PS256 RS256',
    });
    const withNonce = verifierWith(
      { claim: () => true },
      { nonce: { secret: 's'.repeat(32) }, algorithms: ['ES256'] },
    );
    expect(withNonce.challenge()).toEqual({
      algs: 'ES256',
      nonce: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
    });
  });
});
