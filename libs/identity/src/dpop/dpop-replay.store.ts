import { ShieldError } from '@inference-shield/core/internal';

/**
 * Where used DPoP proofs are remembered (RFC 9449 §11.1). Keys are fixed-length hashes of the
 * proof key's thumbprint and the proof's `jti`; nothing of the proof or the token is stored.
 */
export interface DpopReplayStore {
  /**
   * Records `key` for `ttlMs` milliseconds. `true` when it was not recorded yet (a fresh proof),
   * `false` when it was (a replay). Throws or rejects when the store cannot answer: the request is
   * then refused with `503 ERR_DPOP_REPLAY_STORE_UNAVAILABLE`, never let through.
   */
  claim(key: string, ttlMs: number): boolean | Promise<boolean>;
}

/** Options of {@link MemoryDpopReplayStore}. */
export interface MemoryDpopReplayStoreOptions {
  /** Proofs remembered at most; when all are still live, new proofs are refused (503). Default 100000. */
  maxEntries?: number;
  /** Clock in epoch ms (tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * The replay store of one process: a map bounded in size and time. Expired entries leave first
 * (the map is in insertion order, and one verifier gives every entry the same lifetime, so the
 * oldest are at the front). When every slot holds a live proof the store refuses new ones rather
 * than forgetting one that could still be replayed: a flood cannot grow memory, nor open a gap.
 * Replicas do not see each other's proofs: use {@link RedisDpopReplayStore} for several.
 *
 * @example
 * dpop: { origin: 'https://api.example', replayStore: new MemoryDpopReplayStore({ maxEntries: 50_000 }) }
 */
export class MemoryDpopReplayStore implements DpopReplayStore {
  private readonly entries = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: MemoryDpopReplayStoreOptions = {}) {
    const max = options.maxEntries ?? 100_000;
    if (!Number.isInteger(max) || max < 1 || max > 10_000_000) {
      throw new TypeError(`"maxEntries" must be an integer from 1 to 10000000, got ${String(max)}`);
    }
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new TypeError('"now" must be a function returning epoch milliseconds');
    }
    this.maxEntries = max;
    this.now = options.now ?? Date.now;
  }

  /** Live entries (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  claim(key: string, ttlMs: number): boolean {
    const now = this.now();
    this.sweep(now);
    const until = this.entries.get(key);
    if (until !== undefined && until > now) return false;
    if (until !== undefined) this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      throw new ShieldError('ERR_DPOP_REPLAY_STORE_UNAVAILABLE', { detail: 'memory replay store full' });
    }
    this.entries.set(key, now + ttlMs);
    return true;
  }

  /** Drops expired entries from the front; each entry is dropped once, so the cost is amortised. */
  private sweep(now: number): void {
    for (const [key, until] of this.entries) {
      if (until > now) return;
      this.entries.delete(key);
    }
  }
}
