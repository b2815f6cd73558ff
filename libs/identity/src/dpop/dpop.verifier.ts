import { createHash } from 'node:crypto';
import { isShieldError, ShieldError } from '@inference-shield/core/internal';
import { DpopNonces } from './dpop-nonce.js';
import type { ResolvedDpopOptions } from './dpop-options.interface.js';
import { verifyDpopProof } from './dpop-proof.js';

/** What one request presents for DPoP, read from it once (see `IdentityDecider.credentialsOf`). */
export interface DpopRequest {
  /** The single `DPoP` header; a refusal when sent more than once; `undefined` when absent. */
  readonly proof: string | ShieldError | undefined;
  readonly method: string;
  /** The request-target in origin form (path and query), as received. */
  readonly target: string;
  /**
   * The underlying request object: one request is checked once, however many times it is
   * decided (the header-only early check, then the guard).
   */
  readonly request: object;
}

interface Checked {
  readonly proof: string;
  readonly accessToken: string;
  readonly result: Promise<string>;
}

/**
 * The DPoP check of each request: the pure proof check ({@link verifyDpopProof}), then the replay
 * check of its `jti`, per proof key, in the replay store. Never cached across requests: a token
 * whose verification is cached still needs a fresh proof each time. Within one request the
 * outcome is kept, so the early header-only check and the guard do not count one proof twice.
 */
export class DpopVerifier {
  /** RFC 9449 §7.1 `algs`, space-separated. */
  readonly algs: string;
  private readonly nonces: DpopNonces | undefined;
  private readonly ttlMs: number;
  private readonly checked = new WeakMap<object, Checked>();

  constructor(
    private readonly options: ResolvedDpopOptions,
    private readonly clock: () => number = Date.now,
  ) {
    this.algs = options.algorithms.join(' ');
    this.nonces = options.nonce ? new DpopNonces(options.nonce.secret, options.nonce.rotationMs) : undefined;
    // Long enough to outlive every proof that could still pass the iat window (plus one second).
    this.ttlMs = (options.proofMaxAgeSeconds + 2 * options.clockToleranceSeconds + 1) * 1000;
  }

  /** The nonce to hand out now, when nonces are on (RFC 9449 §8.2: on any response). */
  currentNonce(): string | undefined {
    return this.nonces?.current(this.clock());
  }

  /** What a 401 of a DPoP-capable route carries: `algs`, and the current nonce when nonces are on. */
  challenge(): { algs: string; nonce?: string } {
    return this.nonces ? { algs: this.algs, nonce: this.nonces.current(this.clock()) } : { algs: this.algs };
  }

  /**
   * Checks the request's proof for `accessToken`, bound to `expectedJkt`; resolves to the proof
   * key's thumbprint. Rejects with a `ShieldError` (`ERR_DPOP_*`; `503
   * ERR_DPOP_REPLAY_STORE_UNAVAILABLE` when the replay store cannot answer).
   */
  check(dpop: DpopRequest, accessToken: string, expectedJkt: string): Promise<string> {
    const { proof } = dpop;
    if (proof === undefined) return Promise.reject(new ShieldError('ERR_DPOP_PROOF_MISSING'));
    if (typeof proof !== 'string') return Promise.reject(proof);
    const seen = this.checked.get(dpop.request);
    if (seen !== undefined && seen.proof === proof && seen.accessToken === accessToken) return seen.result;
    const result = this.verify(dpop, proof, accessToken, expectedJkt);
    this.checked.set(dpop.request, { proof, accessToken, result });
    return result;
  }

  private async verify(
    dpop: DpopRequest,
    proof: string,
    accessToken: string,
    expectedJkt: string,
  ): Promise<string> {
    const verified = await verifyDpopProof(
      proof,
      {
        method: dpop.method,
        url: dpop.target,
        accessToken,
        expectedJkt,
        ...(this.nonces ? { nonces: this.nonces } : {}),
      },
      this.options,
      this.clock,
    );
    // RFC 9449 §11.1: `jti` is unique per key; the key is a hash (fixed length, nothing of the proof).
    const key = createHash('sha256').update(`${verified.thumbprint}\n${verified.jti}`).digest('base64url');
    let fresh: boolean;
    try {
      fresh = await this.options.replayStore.claim(key, this.ttlMs);
    } catch (err) {
      throw isShieldError(err) && err.code === 'ERR_DPOP_REPLAY_STORE_UNAVAILABLE'
        ? err
        : new ShieldError('ERR_DPOP_REPLAY_STORE_UNAVAILABLE', { detail: 'replay store failed', cause: err });
    }
    if (fresh !== true) throw new ShieldError('ERR_DPOP_PROOF_REPLAYED');
    return verified.thumbprint;
  }
}
