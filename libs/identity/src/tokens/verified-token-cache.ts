import { hash, timingSafeEqual } from 'node:crypto';
import type { ResolvedKey } from './issuer-key-set.js';
import type { VerifiedToken } from './verified-token.interface.js';

/** A verified token kept for reuse, and what it was verified with. */
export interface CachedVerification {
  readonly token: VerifiedToken;
  readonly key: ResolvedKey;
  /** Epoch ms after which the entry is not used: no later than `exp` (plus the clock tolerance). */
  readonly validUntilMs: number;
}

/**
 * The last verification of one connection, keyed by the exact `Authorization` header bytes. It
 * holds that header (so the token) for as long as the connection lives, as the connection's own
 * buffers did: never logged, never in stats, gone with the socket or at `clear()`.
 */
interface ConnectionEntry {
  /** The header's bytes (ASCII: it passed the bearer syntax). */
  readonly header: Buffer;
  /** Same length as `header`: where a candidate header is encoded, so a comparison allocates nothing. */
  readonly scratch: Buffer;
  /** The verification; replaced in place when the connection's next header has the same length. */
  entry: CachedVerification;
}

/** Longest time a verification is reused, whatever `exp` says. */
export const MAX_CACHE_TTL_MS = 5 * 60_000;

/**
 * The verifier's one cache of verified tokens, so a client reusing its token pays for the
 * signature once. Two ways in, one store of verifications and one reuse rule
 * ({@link VerifiedTokenCache.reusable}):
 *
 * - by token: keyed by the SHA-256 of the token (the token itself is never a key), bounded, the
 *   oldest going first when full (see {@link VerifiedTokenCache.set});
 * - by connection: the same connection presenting the byte-identical `Authorization` header again
 *   finds its last verification without hashing or parsing (one entry per live connection, held
 *   weakly: it goes with the socket).
 *
 * Owned by one `TokenVerifier`; nothing is kept with 0 entries allowed.
 */
export class VerifiedTokenCache {
  // Two generations: new entries go to `young`; when it holds half the entries allowed, it becomes
  // `old` and the previous `old` is dropped whole. Evicting one entry at a time from the front of
  // one Map costs more and more as deleted slots pile up in front of the live ones (a profile
  // showed 6 µs per miss at 10,000 entries); dropping a Map costs nothing per entry.
  private young = new Map<string, CachedVerification>();
  private old = new Map<string, CachedVerification>();
  private readonly generation: number;
  private connections = new WeakMap<object, ConnectionEntry>();
  hits = 0;
  misses = 0;
  connectionHits = 0;

  constructor(private readonly maxEntries: number) {
    this.generation = Math.max(1, Math.ceil(maxEntries / 2));
  }

  /** The cache key of a token. */
  static keyOf(token: string): string {
    // The one-shot hash: no Hash object per token (Node >= 20.12).
    return hash('sha256', token, 'base64url');
  }

  /**
   * The one rule for reusing a verification: within its time (`exp` plus tolerance, at most 5
   * minutes) and its key still in its issuer's set. What depends on the request (the RFC 8705
   * binding) and on the issuer now (its keys not stale) is checked by the verifier on every use.
   */
  static reusable(entry: CachedVerification, nowMs: number): boolean {
    return nowMs < entry.validUntilMs && entry.key.retired !== true;
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /**
   * The entry for `key` if it is still {@link reusable} at `nowMs`. An entry found in the older
   * generation moves to the younger one: a token in use stays while the ones nobody reuses go.
   */
  get(key: string, nowMs: number): CachedVerification | undefined {
    if (this.maxEntries === 0) return undefined;
    let entry = this.young.get(key);
    const young = entry !== undefined;
    if (!young) entry = this.old.get(key);
    if (entry === undefined || !VerifiedTokenCache.reusable(entry, nowMs)) {
      if (entry !== undefined) (young ? this.young : this.old).delete(key);
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (!young) {
      this.old.delete(key);
      this.set(key, entry);
    }
    return entry;
  }

  /**
   * Keeps `entry` under `key`. At most `maxEntries` are held: when the younger generation is full
   * (half of them) the older one is dropped; in between, an odd `maxEntries` may take one more
   * from the front of the older one.
   */
  set(key: string, entry: CachedVerification): void {
    if (this.maxEntries === 0) return;
    this.young.delete(key);
    this.old.delete(key);
    if (this.young.size >= this.generation) {
      this.old = this.young;
      this.young = new Map();
    }
    while (this.young.size + this.old.size >= this.maxEntries) {
      const oldest = this.old.keys().next();
      if (oldest.done) break;
      this.old.delete(oldest.value);
    }
    this.young.set(key, entry);
  }

  /**
   * The verification remembered for `connection` when `header` is byte-identical to the header it
   * was remembered with, and it is still {@link reusable}. Compared in constant time: on a
   * connection shared by several clients (a gateway's pool), the remembered header is another
   * client's token.
   */
  recall(connection: object, header: string, nowMs: number): CachedVerification | undefined {
    const remembered = this.connections.get(connection);
    if (remembered === undefined || !sameHeader(remembered, header)) return undefined;
    if (!VerifiedTokenCache.reusable(remembered.entry, nowMs)) {
      this.connections.delete(connection);
      return undefined;
    }
    this.connectionHits++;
    return remembered.entry;
  }

  /** Remembers `entry` as the last verification of `connection`, for this exact `header`. */
  remember(connection: object, header: string, entry: CachedVerification): void {
    if (this.maxEntries === 0) return;
    const previous = this.connections.get(connection);
    // A client changing its token usually sends one of the same length (same IdP, same claims):
    // the connection's buffers are rewritten rather than allocated again.
    if (previous !== undefined && previous.header.length === header.length) {
      if (previous.header.write(header, 0, 'utf8') === header.length) {
        previous.entry = entry;
        return;
      }
      // Not one byte per character (never, for a header that passed the bearer syntax): the
      // half-written bytes must never be compared with anything.
      this.connections.delete(connection);
    }
    const bytes = Buffer.from(header, 'utf8');
    this.connections.set(connection, { header: bytes, scratch: Buffer.alloc(bytes.length), entry });
  }

  /**
   * After a key-set change: drop the entries of `issuer` verified with a `kid` in `gone`, and
   * those verified without a `kid` (we cannot tell which key they used). Frees the memory at
   * once; {@link reusable} already refuses them (their keys are retired).
   */
  dropKeys(issuer: string, gone: ReadonlySet<string>): void {
    for (const generation of [this.young, this.old]) {
      for (const [key, entry] of generation) {
        if (entry.token.issuer !== issuer) continue;
        const { kid, key: material } = entry.key;
        if (material instanceof Uint8Array) continue; // a shared secret is not in the key set
        if (kid === undefined || gone.has(kid)) generation.delete(key);
      }
    }
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
    this.connections = new WeakMap();
  }
}

/**
 * Whether a header is byte-identical to a remembered one, in time independent of where they
 * differ: an early-exit comparison would leak how much of another client's token a guess matched.
 */
function sameHeader(remembered: ConnectionEntry, header: string): boolean {
  const { header: bytes, scratch } = remembered;
  // The remembered header is ASCII, one byte per character: another length is another header.
  if (header.length !== bytes.length) return false;
  // A non-ASCII character encodes to bytes >= 0x80 (or does not fit): never equal to ASCII bytes.
  if (scratch.write(header, 0, 'utf8') !== bytes.length) return false;
  return timingSafeEqual(bytes, scratch);
}
