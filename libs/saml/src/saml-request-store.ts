import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { MemorySamlReplayCache } from './saml-replay-cache.js';
import { IDP_NAME } from './saml.constants.js';

/**
 * Remembers the AuthnRequests we sent (their IDs and the IdP asked), so a response's
 * `InResponseTo` answers a request of ours, once (SAML profiles §4.1.4.3). Shared by every replica.
 */
export interface SamlRequestStore {
  /** Records request `id`, sent to IdP `idp`, until `expiresAt`. */
  save(id: string, idp: string, expiresAt: Date): Promise<void>;
  /** Removes `id` and returns its IdP name, or `undefined` when unknown or expired (atomic: once). */
  take(id: string): Promise<string | undefined>;
  /**
   * Optional: makes a request ID that needs no state until it is answered (it carries its IdP,
   * its expiry and a MAC). When a store has it, `GET /saml/login` calls it instead of `save`, so
   * anonymous logins store nothing; `take` must still accept such an ID once.
   */
  mint?(idp: string, expiresAt: Date): string;
}

// A minted ID: "_" + base64url(nonce 16 ‖ expiry 4 ‖ MAC 16) + "." + the IdP name (an xs:ID: it
// starts with "_" and holds letters, digits, "-", "_" and "." only).
const MINTED = /^_([A-Za-z0-9_-]{48})\.([^.]+)$/;
const NONCE_BYTES = 16;
const MAC_BYTES = 16;

/**
 * The in-memory request store, for a single replica.
 *
 * Logins started with `GET /saml/login` store nothing: their request IDs are minted ({@link mint})
 * with a MAC under a key this instance draws at random, so a flood of anonymous logins cannot
 * push out the pending requests of real users (it did when pending requests were kept here and
 * the oldest dropped at capacity). What is kept is the IDs already answered, so each is accepted
 * once; they come only from responses whose signature verified, and are forgotten at their
 * expiry. Full of unexpired answers, it refuses (`ERR_NOT_READY`, 503) rather than forget one,
 * as the replay cache does, whose mechanism it uses. A restart forgets the key: logins in flight then fail,
 * as they did when the pending requests were in this memory.
 *
 * `save`/`take` of other IDs work as before (bounded; at capacity the oldest is dropped).
 */
export class MemorySamlRequestStore implements SamlRequestStore {
  private readonly entries = new Map<string, { idp: string; expiresAt: number }>();
  // Answered IDs, each held until it expires: the replay cache's mechanism, which refuses
  // (`ERR_NOT_READY`) rather than evict an unexpired ID when full.
  private readonly answered: MemorySamlReplayCache;
  private readonly key = randomBytes(32);

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`"maxEntries" must be a positive integer, got ${String(maxEntries)}`);
    }
    this.answered = new MemorySamlReplayCache(maxEntries, now);
  }

  /** Requests currently held (saved and not taken, plus minted ones already answered). */
  get size(): number {
    return this.entries.size + this.answered.size;
  }

  mint(idp: string, expiresAt: Date): string {
    if (!IDP_NAME.test(idp))
      throw new TypeError('not an IdP name (a-z, 0-9 and "-", 1 to 32, not starting with "-")');
    const body = Buffer.alloc(NONCE_BYTES + 4 + MAC_BYTES);
    randomBytes(NONCE_BYTES).copy(body, 0);
    body.writeUInt32BE(Math.ceil(expiresAt.getTime() / 1000), NONCE_BYTES);
    this.mac(body.subarray(0, NONCE_BYTES + 4), idp).copy(body, NONCE_BYTES + 4);
    return `_${body.toString('base64url')}.${idp}`;
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
    const minted = MINTED.exec(id);
    if (minted !== null)
      return Promise.resolve(this.takeMinted(id, minted[1] as string, minted[2] as string));
    const entry = this.entries.get(id);
    if (entry === undefined) return Promise.resolve(undefined);
    this.entries.delete(id);
    return Promise.resolve(entry.expiresAt > this.now() ? entry.idp : undefined);
  }

  private async takeMinted(id: string, encoded: string, idp: string): Promise<string | undefined> {
    if (!IDP_NAME.test(idp)) return undefined;
    const body = Buffer.from(encoded, 'base64url');
    if (body.length !== NONCE_BYTES + 4 + MAC_BYTES) return undefined;
    const signed = body.subarray(0, NONCE_BYTES + 4);
    if (!timingSafeEqual(this.mac(signed, idp), body.subarray(NONCE_BYTES + 4))) return undefined;
    const expiresAt = body.readUInt32BE(NONCE_BYTES) * 1000;
    if (expiresAt <= this.now()) return undefined;
    return (await this.answered.consumeOnce(id, new Date(expiresAt))) ? idp : undefined;
  }

  private mac(signed: Buffer, idp: string): Buffer {
    return createHmac('sha256', this.key)
      .update('shield-saml-authn-request\0')
      .update(idp)
      .update('\0')
      .update(signed)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}
