import { createPublicKey, KeyObject, type JsonWebKey, type webcrypto } from 'node:crypto';
import type { Agent } from 'undici';
import { ShieldError } from '@inference-shield/core/internal';
import { createLocalJWKSet, type JWK } from 'jose';

type CryptoKey = webcrypto.CryptoKey;
import { isSymmetricAlgorithm, type JwsHeader } from './jws-inspect.js';
import {
  createIssuerAgent,
  discoverJwksUri,
  fetchJsonDocument,
  KeySetFetchError,
  type FetchContext,
  type JwksFetch,
} from './jwks-fetch.js';
import { translateJoseError } from './jose-error.mapping.js';
import { signatureCheckFor, type SignatureCheck } from './jws-signature.js';
import type { ResolvedIssuerOptions } from './token-verifier-options.interface.js';

/** The key that a token names, and the signature check it was prepared for. */
export interface ResolvedKey {
  /** The key: a public `CryptoKey` from the key set (as jose imported it), or the issuer's shared secret. */
  readonly key: CryptoKey | Uint8Array;
  /** Checks a signature of the token's `alg` with this key (see jws-signature.ts). */
  readonly check: SignatureCheck;
  /** The `kid` the key was found under; absent for a token without `kid` and for HS*. */
  readonly kid?: string;
  /**
   * True once the key left its issuer's set (or was replaced under its `kid`, or became
   * unusable): nothing verified with it may be reused. Absent or false for a key still held and
   * for the shared secret.
   */
  readonly retired?: boolean;
}

/** A key-set key as the set hands it out; `retired` is set by the set alone. */
interface HeldKey extends ResolvedKey {
  retired: boolean;
}

/** Per-issuer key-set figures for `TokenVerifier.stats()`. */
export interface IssuerKeySetStats {
  /** JWKS documents requested (discovery documents not counted). */
  readonly jwksFetches: number;
  /** Key-set refreshes that failed (discovery, fetch, or no usable key); the previous keys stay. */
  readonly jwksFailures: number;
  /** Usable keys held now. */
  readonly keys: number;
  /** Epoch ms of the last successful fetch (inline keys: when they were loaded). */
  readonly lastFetchOk?: number;
  /** The reason of the last failed fetch, for operators (never a response body). */
  readonly lastError?: string;
}

/** Why an issuer's keys cannot be used right now. */
export type KeySetState = 'ok' | 'unloaded' | 'stale';

interface KeyEntry {
  readonly kid: string;
  readonly usable: boolean;
  readonly fingerprint: string;
}

interface LoadedKeys {
  readonly byKid: ReadonlyMap<string, KeyEntry>;
  readonly local: ReturnType<typeof createLocalJWKSet>;
  readonly usable: number;
  /** Keys already picked by jose for an `alg` and `kid`: the choice depends on nothing else. */
  readonly resolved: Map<string, HeldKey>;
}

/** Called after a key-set swap with the `kid`s that left the set or changed their key. */
export type KeysChangedListener = (issuer: string, gone: ReadonlySet<string>) => void;

const MAX_KEYS = 100;
const MAX_KID_LENGTH = 256;
const MIN_RSA_BITS = 2048;
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];
const KTY_OF_ALG: Readonly<Record<string, string>> = {
  RS256: 'RSA',
  RS384: 'RSA',
  RS512: 'RSA',
  PS256: 'RSA',
  PS384: 'RSA',
  PS512: 'RSA',
  ES256: 'EC',
  ES384: 'EC',
  ES512: 'EC',
  EdDSA: 'OKP',
  Ed25519: 'OKP',
};
/** RFC 7518 §3.4: the one curve of each ECDSA algorithm (jose selects no other for it). */
const CRV_OF_ALG: Readonly<Record<string, string>> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };
const ALLOWED_CURVES: Readonly<Record<string, readonly string[]>> = {
  EC: ['P-256', 'P-384', 'P-521'],
  OKP: ['Ed25519'],
};

/**
 * One issuer's verification keys: loaded before the app serves, refreshed lazily, refetched on
 * an unknown `kid` at most once per cooldown (single-flight), kept while the IdP is unreachable
 * for at most `maxKeyStalenessMs`. Only this issuer's tokens are ever checked against these
 * keys (issuer mix-up). Tokens never choose where keys come from: no `jku`, no `x5u`.
 */
export class IssuerKeySet {
  readonly issuer: string;
  private readonly agent?: Agent;
  private readonly fetchContext?: FetchContext;
  private readonly secret?: Uint8Array;
  /** The shared secret, prepared once per HS algorithm. */
  private readonly secretKeys = new Map<string, ResolvedKey>();
  private loaded?: LoadedKeys;
  private jwksUri?: string;
  private inflight?: Promise<void>;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastSuccessAt?: number;
  private lastError?: string;
  private fetches = 0;
  private failures = 0;
  private keyGeneration = 0;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly loadedWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

  constructor(
    private readonly options: ResolvedIssuerOptions,
    private readonly deps: {
      readonly now: () => number;
      readonly fetch: JwksFetch;
      readonly closed: AbortSignal;
      readonly onKeysChanged?: KeysChangedListener;
      /** The issuer's CA bundle, loaded and checked by core (`loadCaSource`) from its `ca` option. */
      readonly ca?: Buffer;
    },
  ) {
    this.issuer = options.issuer;
    if (options.sharedSecret) this.secret = options.sharedSecret;
    const source = options.keySource;
    if (source.kind === 'jwks-uri' || source.kind === 'discovery') {
      if (source.kind === 'jwks-uri') this.jwksUri = source.jwksUri;
      this.agent = createIssuerAgent({
        timeoutMs: options.fetchTimeoutMs,
        ...(deps.ca !== undefined ? { ca: deps.ca } : {}),
      });
      this.fetchContext = {
        dispatcher: this.agent,
        timeoutMs: options.fetchTimeoutMs,
        fetch: deps.fetch,
        closed: deps.closed,
      };
    }
  }

  /** True when keys come from the network (discovery or `jwksUri`). */
  get remote(): boolean {
    return this.fetchContext !== undefined;
  }

  /** Loaded at least once (inline keys and secret-only issuers: after `load()`). */
  get isLoaded(): boolean {
    return this.loaded !== undefined || this.options.keySource.kind === 'none';
  }

  /**
   * First load. Inline keys are imported; remote keys fetched (discovery first when needed).
   * Rejects with {@link KeySetFetchError} naming the issuer and the reason.
   */
  async load(): Promise<void> {
    const source = this.options.keySource;
    if (source.kind === 'none') return this.markLoaded();
    if (source.kind === 'inline') {
      this.swap(await this.importKeys(source.jwks));
      this.lastSuccessAt = this.deps.now();
      return this.markLoaded();
    }
    await this.refresh();
  }

  /**
   * Loads in the background, retrying every cooldown until it works or the set is closed
   * (`startup: 'not-ready'`). Never rejects.
   */
  loadInBackground(): void {
    const attempt = (): void => {
      if (this.closed || this.isLoaded) return;
      this.load().catch(() => {
        if (this.closed || this.isLoaded) return;
        this.retryTimer = setTimeout(attempt, this.options.refetchCooldownMs);
        this.retryTimer.unref();
      });
    };
    attempt();
  }

  /** Resolves once the keys are loaded (at once if they are); rejects if the set is closed first. */
  whenLoaded(): Promise<void> {
    if (this.isLoaded) return Promise.resolve();
    if (this.closed) return Promise.reject(new KeySetFetchError(`issuer ${this.issuer}: closed`));
    return new Promise((resolve, reject) => this.loadedWaiters.push({ resolve, reject }));
  }

  /**
   * Bumped each time the set changes (a key added, gone, replaced under its `kid`, or unusable:
   * whenever `onKeysChanged` fires). For monitoring and tests; what decides reuse is each key's
   * {@link ResolvedKey.retired}.
   */
  get generation(): number {
    return this.keyGeneration;
  }

  /** Whether the keys can be used now: loaded, and not older than `maxKeyStalenessMs`. */
  state(): KeySetState {
    if (!this.isLoaded) return 'unloaded';
    if (this.remote) {
      const age = this.deps.now() - (this.lastSuccessAt ?? Number.NEGATIVE_INFINITY);
      if (age > this.options.maxKeyStalenessMs) return 'stale';
    }
    return 'ok';
  }

  /**
   * Called on the request path: starts a background refresh when the refresh interval has
   * passed (or, for unusable keys, when the cooldown has). Never waits, never throws.
   */
  maybeRefresh(): void {
    if (!this.remote || this.inflight || this.closed) return;
    const since = this.deps.now() - this.lastAttemptAt;
    const due = this.state() === 'ok' ? this.options.refreshIntervalMs : this.options.refetchCooldownMs;
    if (since >= due) this.refresh().catch(() => undefined);
  }

  /**
   * The key a token's header names. HS* get the shared secret (never a key-set key: that is
   * the RS→HS confusion). An unknown `kid` waits for at most one refetch, shared by all
   * concurrent callers and not repeated within the cooldown. Throws ShieldError.
   */
  async resolveKey(header: JwsHeader): Promise<ResolvedKey> {
    const known = this.knownKey(header);
    if (known !== undefined) return known;
    const { alg, kid } = header;
    if (!this.loaded) throw new ShieldError('ERR_KEYSET_UNAVAILABLE');
    if (kid !== undefined) {
      let entry = this.loaded.byKid.get(kid);
      if (!entry) {
        await this.refetchForUnknownKid();
        entry = this.loaded.byKid.get(kid);
        if (!entry) throw new ShieldError('ERR_TOKEN_KEY_NOT_FOUND');
      }
      if (!entry.usable) throw new ShieldError('ERR_TOKEN_KEY_UNUSABLE');
    }
    const loaded = this.loaded;
    const memoKey = kid === undefined ? alg : `${alg} ${kid}`;
    const memo = loaded.resolved.get(memoKey);
    if (memo) return memo;
    let key: CryptoKey;
    try {
      // jose picks the key by `kid`, `alg`/`kty`, `crv`, `use` and `key_ops`. Only `alg` and
      // `kid` are passed: nothing else from the token can steer the choice.
      key = (await loaded.local(kid !== undefined ? { alg, kid } : { alg })) as CryptoKey;
    } catch (err) {
      throw translateJoseError(err);
    }
    // Converted once, here: every later token of this `alg` and `kid` is one OpenSSL call.
    const check = signatureCheckFor(alg, KeyObject.from(key));
    const resolved: HeldKey = { key, check, ...(kid !== undefined ? { kid } : {}), retired: false };
    // The set was swapped while jose looked the key up: this key belongs to no current set, so
    // nothing verified with it is kept for reuse.
    if (this.loaded !== loaded) resolved.retired = true;
    // Bounded by keys × algorithms: only kids present in this set get here.
    loaded.resolved.set(memoKey, resolved);
    return resolved;
  }

  /**
   * The key {@link resolveKey} would return at once, without waiting: the shared secret for HS*,
   * or a key-set key already handed out for this `alg` and `kid` (still in the set). `undefined`
   * when a lookup is needed; throws ShieldError for an HS* token at an issuer without a secret.
   */
  knownKey(header: JwsHeader): ResolvedKey | undefined {
    const { alg, kid } = header;
    if (isSymmetricAlgorithm(alg)) return this.secretKeyFor(alg);
    const loaded = this.loaded;
    if (loaded === undefined) return undefined;
    if (kid !== undefined && loaded.byKid.get(kid)?.usable !== true) return undefined;
    return loaded.resolved.get(kid === undefined ? alg : `${alg} ${kid}`);
  }

  /** HS* get the shared secret, never a key-set key: that is the RS→HS confusion. */
  private secretKeyFor(alg: string): ResolvedKey {
    const secret = this.secret;
    if (!secret) throw new ShieldError('ERR_TOKEN_ALG_NOT_ALLOWED');
    let resolved = this.secretKeys.get(alg);
    if (resolved === undefined) {
      resolved = Object.freeze({ key: secret, check: signatureCheckFor(alg, secret) });
      this.secretKeys.set(alg, resolved);
    }
    return resolved;
  }

  /** Refetches now (single-flight; ignores the cooldown). Rejects when the fetch fails. */
  refresh(): Promise<void> {
    if (this.closed) return Promise.reject(new KeySetFetchError(`issuer ${this.issuer}: closed`));
    if (!this.remote) return Promise.resolve();
    if (this.inflight) return this.inflight;
    this.lastAttemptAt = this.deps.now();
    this.inflight = this.fetchAndSwap().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Figures for monitoring and tests. */
  stats(): IssuerKeySetStats {
    return {
      jwksFetches: this.fetches,
      jwksFailures: this.failures,
      keys: this.loaded?.usable ?? 0,
      ...(this.lastSuccessAt !== undefined ? { lastFetchOk: this.lastSuccessAt } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** Stops retries and closes the agent. In-flight fetches were aborted by the close signal. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const waiter of this.loadedWaiters.splice(0)) {
      waiter.reject(new KeySetFetchError(`issuer ${this.issuer}: closed before its keys were loaded`));
    }
    await this.inflight?.catch(() => undefined);
    await this.agent?.destroy().catch(() => undefined);
  }

  private refetchForUnknownKid(): Promise<void> {
    if (!this.remote || this.closed) return Promise.resolve();
    // A flood of random `kid`s shares the fetch in flight, then gets nothing until the
    // cooldown has passed: at most one request to the IdP per cooldown.
    if (this.inflight) return this.inflight.catch(() => undefined);
    if (this.deps.now() - this.lastAttemptAt < this.options.refetchCooldownMs) return Promise.resolve();
    return this.refresh().catch(() => undefined);
  }

  private async fetchAndSwap(): Promise<void> {
    const ctx = this.fetchContext;
    if (!ctx) return;
    try {
      const source = this.options.keySource;
      if (this.jwksUri === undefined && source.kind === 'discovery') {
        this.jwksUri = await discoverJwksUri(source.discoveryUrl, this.issuer, ctx);
      }
      const jwksUri = this.jwksUri;
      if (jwksUri === undefined) throw new KeySetFetchError('no jwks_uri');
      this.fetches++;
      const doc = await fetchJsonDocument(jwksUri, ctx);
      const keys = await this.importKeys(doc);
      if (keys.usable === 0) throw new KeySetFetchError(`GET ${jwksUri}: no usable signing key`);
      this.swap(keys);
      this.lastSuccessAt = this.deps.now();
      this.lastError = undefined;
      this.markLoaded();
    } catch (err) {
      // Keep the previous keys: an IdP outage must not log everyone out at once.
      const message = err instanceof Error ? err.message : 'unknown error';
      this.failures++;
      this.lastError = message;
      throw new KeySetFetchError(`issuer ${this.issuer}: ${message}`, { cause: err });
    }
  }

  private swap(next: LoadedKeys): void {
    const previous = this.loaded;
    this.loaded = next;
    if (!previous) return;
    const gone = new Set<string>();
    for (const [kid, entry] of previous.byKid) {
      const now = next.byKid.get(kid);
      if (!now || now.fingerprint !== entry.fingerprint || !now.usable) gone.add(kid);
    }
    const changed = gone.size > 0 || previous.usable !== next.usable;
    // Keys handed out before the swap: those that left (and, on any change, the kid-less ones: a
    // token without `kid` does not say which key verified it) are retired, so nothing verified
    // with them is reused; the others carry over to the new set, where a later swap can retire
    // them in turn.
    for (const [memoKey, held] of previous.resolved) {
      if (changed && (held.kid === undefined || gone.has(held.kid))) held.retired = true;
      else if (!next.resolved.has(memoKey)) next.resolved.set(memoKey, held);
    }
    if (changed) {
      this.keyGeneration++;
      this.deps.onKeysChanged?.(this.issuer, gone);
    }
  }

  private markLoaded(): void {
    for (const waiter of this.loadedWaiters.splice(0)) waiter.resolve();
  }

  /**
   * Keeps only public signing keys with a `kid`: `use` absent or `sig`, `key_ops` absent or
   * with `verify`, no symmetric (`oct`) key, no private member. Weak or broken keys stay
   * listed as unusable, so a token naming them gets ERR_TOKEN_KEY_UNUSABLE (jose would throw
   * a plain TypeError at verification: a 500 if not caught).
   */
  private async importKeys(doc: unknown): Promise<LoadedKeys> {
    const list = (doc as { keys?: unknown } | null)?.keys;
    if (typeof doc !== 'object' || doc === null || !Array.isArray(list)) {
      throw new KeySetFetchError('the key set is not a JWK Set');
    }
    if (list.length > MAX_KEYS) throw new KeySetFetchError(`the key set holds more than ${MAX_KEYS} keys`);
    const byKid = new Map<string, KeyEntry>();
    const usableJwks: JWK[] = [];
    for (const raw of list as unknown[]) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) continue;
      const jwk = raw as Record<string, unknown>;
      const kid = jwk['kid'];
      // `kid` is only ever a Map key; duplicates are ambiguous, the first one wins.
      if (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH || byKid.has(kid))
        continue;
      if (!isSigningKey(jwk)) continue;
      const usable = checkKeyStrength(jwk);
      byKid.set(kid, { kid, usable, fingerprint: fingerprintOf(jwk) });
      if (usable) usableJwks.push(structuredClone(jwk) as JWK);
    }
    const local = createLocalJWKSet({ keys: usableJwks });
    // Import every key now, for every algorithm it may serve, so the first request pays no
    // import and a key jose cannot use is known before a token names it.
    for (const jwk of usableJwks) {
      const kid = jwk.kid as string;
      let ok = true;
      for (const alg of this.options.algorithms) {
        if (KTY_OF_ALG[alg] !== jwk.kty || (jwk.alg !== undefined && jwk.alg !== alg)) continue;
        // An EC key without `alg` serves only the algorithm of its curve: a P-384 key is not
        // broken because ES256 (also allowed) cannot select it.
        const crv = CRV_OF_ALG[alg];
        if (crv !== undefined && crv !== jwk.crv) continue;
        try {
          await local({ alg, kid });
        } catch {
          ok = false;
        }
      }
      if (!ok) byKid.set(kid, { kid, usable: false, fingerprint: fingerprintOf(jwk) });
    }
    let usable = 0;
    for (const entry of byKid.values()) if (entry.usable) usable++;
    return { byKid, local, usable, resolved: new Map() };
  }
}

function isSigningKey(jwk: Record<string, unknown>): boolean {
  const { kty, use } = jwk;
  const keyOps = jwk['key_ops'];
  if (use !== undefined && use !== 'sig') return false;
  if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.includes('verify'))) return false;
  if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') return false;
  return !PRIVATE_JWK_MEMBERS.some((member) => Object.hasOwn(jwk, member));
}

function checkKeyStrength(jwk: Record<string, unknown>): boolean {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    return false;
  }
  const details = key.asymmetricKeyDetails;
  if (jwk['kty'] === 'RSA') return (details?.modulusLength ?? 0) >= MIN_RSA_BITS;
  const curves = ALLOWED_CURVES[jwk['kty'] as string] ?? [];
  return typeof jwk['crv'] === 'string' && curves.includes(jwk['crv']);
}

function fingerprintOf(jwk: Record<string, unknown>): string {
  const { kty, crv, n, e, x, y, alg } = jwk;
  return JSON.stringify([kty, crv, n, e, x, y, alg]);
}
