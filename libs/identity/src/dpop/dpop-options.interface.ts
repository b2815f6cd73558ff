import type { DpopReplayStore } from './dpop-replay.store.js';

/** RFC 9449 §8: server-provided nonces, stateless (an HMAC of a time step), shared by every replica with the same secret. */
export interface DpopNonceOptions {
  /** At least 32 bytes; the same on every replica. Never logged. */
  secret: string | Uint8Array;
  /** A new nonce every this many seconds; the previous one is still accepted. Default 300 (30 to 3600). */
  rotationSeconds?: number;
}

/**
 * DPoP (RFC 9449) for access tokens bound to a client key (`cnf.jkt`): every request presenting
 * one must carry a fresh proof signed by that key, for this method and URL.
 *
 * @example
 * dpop: { origin: 'https://api.example', replayStore: new RedisDpopReplayStore(redis) }
 */
export interface DpopOptions {
  /**
   * The public origin(s) clients call this service at (`https://api.example`, or
   * `https://api.example:8443`): a proof's `htu` must be one of them plus the request's path.
   * The `Host` header is never used: it is the client's to choose.
   */
  origin: string | string[];
  /** Accepted proof algorithms (asymmetric only). Default `['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256']`. */
  algorithms?: string[];
  /** How old a proof's `iat` may be, in seconds. Default 60 (1 to 300). */
  proofMaxAgeSeconds?: number;
  /** Clock skew allowed on `iat` (both ways), in seconds. Default 5 (0 to 60). */
  clockToleranceSeconds?: number;
  /** Proofs longer than this are refused before any parsing. Default 4096 (1024 to 16384). */
  maxProofBytes?: number;
  /**
   * Where used proofs (`jti`, per key) are remembered while they could be replayed. Default: a
   * {@link MemoryDpopReplayStore} (one process). Several replicas share a
   * {@link RedisDpopReplayStore}, or a replay on another replica is not seen.
   */
  replayStore?: DpopReplayStore;
  /** Require a server nonce in every proof (`use_dpop_nonce`). Default: no nonce. */
  nonce?: DpopNonceOptions;
}

/** {@link DpopOptions} after validation: frozen, every default filled in. */
export interface ResolvedDpopOptions {
  /** Each configured origin, as `URL.origin` gives it (`https://api.example`). */
  readonly origins: ReadonlySet<string>;
  readonly algorithms: readonly string[];
  readonly proofMaxAgeSeconds: number;
  readonly clockToleranceSeconds: number;
  readonly maxProofBytes: number;
  readonly replayStore: DpopReplayStore;
  readonly nonce: { readonly secret: Uint8Array; readonly rotationMs: number } | undefined;
}
