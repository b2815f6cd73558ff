import { createHash } from 'node:crypto';
import type { ResolvedKey } from './issuer-key-set.js';
import type { VerifiedToken } from './verified-token.interface.js';

/** A verified token kept for reuse, and what it was verified with. */
export interface CachedVerification {
  readonly token: VerifiedToken;
  readonly key: ResolvedKey;
  /** Epoch ms after which the entry is not used: no later than `exp` (plus the clock tolerance). */
  readonly validUntilMs: number;
}

/** Longest time a verification is reused, whatever `exp` says. */
export const MAX_CACHE_TTL_MS = 5 * 60_000;

/**
 * A bounded map of verified tokens, so a client reusing its token pays for the signature once.
 * Keyed by the SHA-256 of the token: the token itself is never kept as a key. The oldest entry
 * goes first when full; an entry past its time is dropped on read; entries verified with a key
 * that left its issuer's set are dropped at once ({@link dropKeys}).
 */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, CachedVerification>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries: number) {}

  /** The cache key of a token. */
  static keyOf(token: string): string {
    return createHash('sha256').update(token).digest('base64url');
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry for `key` if it is still within its time at `nowMs`. */
  get(key: string, nowMs: number): CachedVerification | undefined {
    if (this.maxEntries === 0) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined || nowMs >= entry.validUntilMs) {
      if (entry !== undefined) this.entries.delete(key);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return entry;
  }

  set(key: string, entry: CachedVerification): void {
    if (this.maxEntries === 0) return;
    this.entries.delete(key);
    this.entries.set(key, entry);
    // Insertion order is age order: evict from the front.
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  /**
   * After a key-set change: drop the entries of `issuer` verified with a `kid` in `gone`, and
   * those verified without a `kid` (we cannot tell which key they used).
   */
  dropKeys(issuer: string, gone: ReadonlySet<string>): void {
    for (const [key, entry] of this.entries) {
      if (entry.token.issuer !== issuer) continue;
      const { kid, key: material } = entry.key;
      if (material instanceof Uint8Array) continue; // a shared secret is not in the key set
      if (kid === undefined || gone.has(kid)) this.entries.delete(key);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
