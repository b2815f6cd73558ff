/**
 * Remembers the AuthnRequests we sent (their IDs and the IdP asked), so a response's
 * `InResponseTo` answers a request of ours, once (SAML profiles §4.1.4.3). Shared by every replica.
 */
export interface SamlRequestStore {
  /** Records request `id`, sent to IdP `idp`, until `expiresAt`. */
  save(id: string, idp: string, expiresAt: Date): Promise<void>;
  /** Removes `id` and returns its IdP name, or `undefined` when unknown or expired (atomic: once). */
  take(id: string): Promise<string | undefined>;
}

/**
 * The in-memory request store, for a single replica. Bounded: when full, the oldest pending
 * request is dropped. Unlike the replay cache this is safe (a dropped request only makes that
 * login fail), and it keeps a flood of `GET /saml/login` from growing memory.
 */
export class MemorySamlRequestStore implements SamlRequestStore {
  private readonly entries = new Map<string, { idp: string; expiresAt: number }>();

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`"maxEntries" must be a positive integer, got ${String(maxEntries)}`);
    }
  }

  /** Requests currently held. */
  get size(): number {
    return this.entries.size;
  }

  save(id: string, idp: string, expiresAt: Date): Promise<void> {
    while (this.entries.size >= this.maxEntries) {
      // Map keeps insertion order: the first key is the oldest request.
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(id, { idp, expiresAt: expiresAt.getTime() });
    return Promise.resolve();
  }

  take(id: string): Promise<string | undefined> {
    const entry = this.entries.get(id);
    if (entry === undefined) return Promise.resolve(undefined);
    this.entries.delete(id);
    return Promise.resolve(entry.expiresAt > this.now() ? entry.idp : undefined);
  }
}
