import { ShieldError } from '@inference-shield/core/internal';

/**
 * Remembers every assertion ID accepted, until the assertion expires, so each is accepted once
 * (SAML profiles §4.1.4.5). Shared by every replica behind a load balancer: a per-process cache
 * lets a replay through on another replica.
 */
export interface SamlReplayCache {
  /**
   * Records `id` until `expiresAt`. Resolves `true` the first time, `false` when `id` is already
   * held. Rejects when the cache cannot answer (the assertion is then refused, never let through).
   */
  consumeOnce(id: string, expiresAt: Date): Promise<boolean>;
}

/**
 * The in-memory replay cache: bounded, for a single replica. When full of unexpired IDs it refuses
 * new ones (`ERR_NOT_READY`) instead of evicting: evicting an unexpired ID would reopen its replay.
 * Its size is bounded in time too, because assertions are accepted for at most
 * `maxAssertionAgeSeconds`.
 */
export class MemorySamlReplayCache implements SamlReplayCache {
  private readonly entries = new Map<string, number>();

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`"maxEntries" must be a positive integer, got ${String(maxEntries)}`);
    }
  }

  /** IDs currently held (expired ones may linger until the next sweep). */
  get size(): number {
    return this.entries.size;
  }

  consumeOnce(id: string, expiresAt: Date): Promise<boolean> {
    const now = this.now();
    const held = this.entries.get(id);
    if (held !== undefined && held > now) return Promise.resolve(false);
    if (held === undefined && this.entries.size >= this.maxEntries) {
      this.sweep(now);
      if (this.entries.size >= this.maxEntries) {
        return Promise.reject(
          new ShieldError('ERR_NOT_READY', { detail: 'SAML replay cache full of unexpired assertion IDs' }),
        );
      }
    }
    this.entries.set(id, expiresAt.getTime());
    return Promise.resolve(true);
  }

  private sweep(now: number): void {
    for (const [key, expiry] of this.entries) if (expiry <= now) this.entries.delete(key);
  }
}
