import type { X509Certificate } from 'node:crypto';
import { fetch as undiciFetch } from 'undici';
import { deepFreeze, ShieldError } from '@inference-shield/core/internal';
import { loadCaSource } from '@inference-shield/core/internal';
import { createLocalJWKSet, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { JsonWebKey } from 'node:crypto';
import { parseSpiffeId } from '@inference-shield/core/internal';
import type { ResolvedJwtSvidOptions } from './jwt-svid-options.js';
import { Introspector, isOpaqueToken, type IntrospectionStats } from '../introspection/introspector.js';
import { extractAccessToken, extractBearerToken } from './bearer-token.js';
import { certificateThumbprint, sameThumbprint } from './certificate-thumbprint.js';
import {
  IssuerKeySet,
  type IssuerKeySetStats,
  type KeySetState,
  type ResolvedKey,
} from './issuer-key-set.js';
import { translateJoseError } from './jose-error.mapping.js';
import { observeTokenVerifier } from '../identity.telemetry.js';
import { decodeClaims, inspectCompactJws, type InspectedJws, type JwsHeader } from './jws-inspect.js';
import type { JwksFetch } from './jwks-fetch.js';
import { assertAlgorithmAllowed, assertSignature } from './jws-signature.js';
import type {
  ResolvedIssuerOptions,
  ResolvedTokenVerifierOptions,
} from './token-verifier-options.interface.js';
import { MAX_CACHE_TTL_MS, VerifiedTokenCache, type CachedVerification } from './verified-token-cache.js';
import type { VerifiedToken } from './verified-token.interface.js';

/** Per-request facts the token may be bound to. */
export interface VerifyContext {
  /** The verified TLS client certificate of this connection (DER or X509Certificate), for RFC 8705. */
  readonly clientCertificate?: Buffer | X509Certificate;
  /**
   * `certificateThumbprint(clientCertificate)`, when the caller already holds it (the guard keeps
   * it per connection), so a bound token costs no hash per request.
   */
  readonly clientCertificateThumbprint?: string;
  /** Refuse tokens that are not certificate-bound (a route that demands RFC 8705 tokens). */
  readonly requireBinding?: boolean;
  /**
   * RFC 9449: the caller checks a DPoP proof for every DPoP-bound token it is given (the identity
   * module does, when `dpop` is configured). The `DPoP` Authorization scheme is then read, and
   * tokens bound by `cnf.jkt` are returned; without it they are refused (`ERR_TOKEN_CLAIM_INVALID`).
   */
  readonly dpop?: boolean;
}

/** Injected for tests: a clock (epoch ms) and the fetch used for discovery and key sets. */
export interface TokenVerifierDeps {
  readonly now?: () => number;
  /** An undici-compatible fetch (it receives a `dispatcher`). Default: undici's `fetch`. */
  readonly fetch?: JwksFetch;
}

/** Figures for monitoring and tests. */
export interface TokenVerifierStats {
  readonly issuers: Record<string, IssuerKeySetStats>;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly cacheEntries: number;
  /** Requests answered by {@link TokenVerifier.recall}: same connection, byte-identical header. */
  readonly connectionMemoHits: number;
  /** RFC 7662 calls and cache figures, when an issuer introspects opaque tokens. */
  readonly introspection?: IntrospectionStats;
}

interface IssuerRuntime {
  readonly options: ResolvedIssuerOptions;
  readonly keySet: IssuerKeySet;
  /** The audiences this issuer's tokens must name one of. */
  readonly audience: ReadonlySet<string>;
}

/** RFC 8705 §3.1: a base64url SHA-256 is 43 characters. */
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const MAX_SCOPES = 256;
/** What an introspected token is "verified with": nothing reusable, so never remembered per connection. */
const INTROSPECTED: ResolvedKey = Object.freeze({
  key: new Uint8Array(0),
  check: () => false,
  retired: true,
});

/**
 * Verifies OAuth 2.0 JWT access tokens (RFC 9068) from one or more issuers, each with its own
 * audience, algorithms and key set. Pure with respect to the request: a token and a context in,
 * a frozen {@link VerifiedToken} out, or a `ShieldError` with an `ERR_TOKEN_*` code.
 *
 * @example
 * const verifier = await TokenVerifier.create(resolveTokenVerifierOptions(raw));
 * const principal = await verifier.verify(extractBearerToken(req.headers.authorization, 8192));
 */
export class TokenVerifier {
  private readonly byIssuer = new Map<string, IssuerRuntime>();
  // The one cache of verifications (by token hash and by connection), this verifier's own.
  private readonly cache: VerifiedTokenCache;
  private readonly abort = new AbortController();
  // RFC 7662, for opaque tokens: set by create() when `opaqueTokenIssuer` is configured.
  private introspector: Introspector | undefined;
  // One jose key set per JWT bundle the source handed out (a new bundle object on each update).
  private readonly jwtSvidKeys = new WeakMap<object, ReturnType<typeof createLocalJWKSet>>();
  // OpenTelemetry observers of stats(), read at collection time only (see identity.telemetry.ts).
  private readonly stopTelemetry: () => void;

  private constructor(
    private readonly options: ResolvedTokenVerifierOptions,
    private readonly now: () => number,
    fetch: JwksFetch,
    cas: readonly (Buffer | undefined)[],
  ) {
    this.cache = new VerifiedTokenCache(options.cacheMaxEntries);
    this.stopTelemetry = observeTokenVerifier(this, now);
    for (const [i, issuer] of options.issuers.entries()) {
      const ca = cas[i];
      const keySet = new IssuerKeySet(issuer, {
        now,
        fetch,
        closed: this.abort.signal,
        onKeysChanged: (name, gone) => this.cache.dropKeys(name, gone),
        ...(ca !== undefined ? { ca } : {}),
      });
      this.byIssuer.set(issuer.issuer, {
        options: issuer,
        keySet,
        audience: new Set(issuer.audience),
      });
    }
  }

  /**
   * Builds the verifier and loads every key set. With `startup: 'fail'` (default) it rejects
   * with `ERR_KEYSET_UNAVAILABLE`, naming each issuer and reason, when a key set cannot be
   * loaded; with `'not-ready'` it resolves at once and keeps retrying in the background.
   */
  static async create(
    options: ResolvedTokenVerifierOptions,
    deps: TokenVerifierDeps = {},
  ): Promise<TokenVerifier> {
    if (!Object.isFrozen(options)) {
      throw new TypeError('TokenVerifier.create() needs options from resolveTokenVerifierOptions()');
    }
    // Certificates are read and checked by core, before any agent exists: a bad file or PEM
    // throws ERR_CERT_INVALID naming it, and app.init() fails.
    const cas = options.issuers.map((issuer, i) =>
      issuer.ca === undefined ? undefined : loadCaSource(`issuers[${i}].ca`, issuer.ca),
    );
    const verifier = new TokenVerifier(options, deps.now ?? Date.now, deps.fetch ?? undiciFetch, cas);
    const opaque = options.issuers.find((i) => i.issuer === options.opaqueTokenIssuer);
    if (opaque?.introspection !== undefined) {
      // Its key, certificate or secret is read now: a bad one stops app.init(), naming the field.
      try {
        verifier.introspector = await Introspector.create(
          opaque,
          opaque.introspection,
          `issuers[${options.issuers.indexOf(opaque)}].introspection`,
          { now: verifier.now, closed: verifier.abort.signal, ...(deps.fetch ? { fetch: deps.fetch } : {}) },
          options.cacheMaxEntries,
        );
      } catch (err) {
        await verifier.close();
        throw err;
      }
    }
    const runtimes = [...verifier.byIssuer.values()];
    // Inline keys and shared secrets are configuration: they load (or fail) now in both modes.
    // Only keys fetched from an IdP may arrive later with `startup: 'not-ready'`.
    const later = options.startup === 'not-ready' ? runtimes.filter(({ keySet }) => keySet.remote) : [];
    const now = runtimes.filter((runtime) => !later.includes(runtime));
    const results = await Promise.allSettled(now.map(({ keySet }) => keySet.load()));
    const problems: string[] = [];
    for (const [i, result] of results.entries()) {
      const runtime = now[i];
      if (!runtime) continue;
      if (result.status === 'rejected') {
        problems.push(
          result.reason instanceof Error ? result.reason.message : `issuer ${runtime.options.issuer}`,
        );
      } else if (runtime.options.keySource.kind === 'inline' && runtime.keySet.stats().keys === 0) {
        problems.push(`issuer ${runtime.options.issuer}: no usable key in "jwks"`);
      }
    }
    if (problems.length > 0) {
      await verifier.close();
      throw new ShieldError('ERR_KEYSET_UNAVAILABLE', {
        message: `Cannot load issuer keys: ${problems.join('; ')}`,
        detail: problems.join('; '),
      });
    }
    for (const { keySet } of later) keySet.loadInBackground();
    return verifier;
  }

  /** True once every issuer's keys were loaded at least once. */
  get ready(): boolean {
    for (const { keySet } of this.byIssuer.values()) if (!keySet.isLoaded) return false;
    return true;
  }

  /**
   * Whether each issuer's keys can be used now, by issuer: `ok`, `unloaded` (never loaded yet) or
   * `stale` (older than `maxKeyStalenessMs`: its tokens are refused until a refresh succeeds).
   */
  keySetStates(): Record<string, KeySetState> {
    const states: Record<string, KeySetState> = {};
    for (const [name, { keySet }] of this.byIssuer) states[name] = keySet.state();
    return states;
  }

  /** Resolves when {@link ready} becomes true. */
  async whenReady(): Promise<void> {
    await Promise.all([...this.byIssuer.values()].map(({ keySet }) => keySet.whenLoaded()));
  }

  /**
   * Verifies an access token. Throws `ShieldError` (`ERR_TOKEN_*`, or `ERR_KEYSET_UNAVAILABLE`
   * while the issuer's keys are not loaded or too stale).
   */
  async verify(token: string, ctx?: VerifyContext): Promise<VerifiedToken> {
    return (await this.check(token, ctx)).token;
  }

  /**
   * Verifies the bearer token of an `Authorization` header, as {@link verify} does: the header is
   * read here, once (RFC 6750 §2.1 syntax, size-bounded). Received on `connection` (the request's
   * socket), the result is remembered for that connection, so that the next request presenting
   * the byte-identical header on it can be answered by {@link recall} without hashing or parsing
   * the token again; without a connection nothing is remembered. Throws `ERR_TOKEN_MISSING` when
   * the header holds no bearer credential (absent, or another scheme), and every code of `verify`.
   *
   * @example
   * const token = verifier.recall(req.socket, header, ctx) ?? (await verifier.verifyAuthorization(req.socket, header, ctx));
   */
  async verifyAuthorization(
    connection: object | undefined,
    authorization: string | string[] | undefined,
    ctx?: VerifyContext,
  ): Promise<VerifiedToken> {
    return this.verifyAuthorizationNow(connection, authorization, ctx);
  }

  /**
   * {@link verifyAuthorization}, answered without waiting when nothing has to be waited for: the
   * token verified with a key already in use (the common case: a new token from a known key) is
   * returned, and a refusal thrown, synchronously. A promise comes back only when the check must
   * wait: a key the set has not handed out yet (first use, unknown `kid`), an introspection, a
   * JWT-SVID. Same checks, same codes, same caching as {@link verifyAuthorization}.
   */
  verifyAuthorizationNow(
    connection: object | undefined,
    authorization: string | string[] | undefined,
    ctx?: VerifyContext,
  ): VerifiedToken | Promise<VerifiedToken> {
    const token = ctx?.dpop
      ? extractAccessToken(authorization, this.options.maxTokenBytes).token
      : extractBearerToken(authorization, this.options.maxTokenBytes);
    const checked = this.check(token, ctx);
    if (checked instanceof Promise) {
      return checked.then((entry) => this.rememberFor(connection, authorization, entry));
    }
    return this.rememberFor(connection, authorization, checked);
  }

  /** Remembers a verification for its connection (see {@link verifyAuthorization}). */
  private rememberFor(
    connection: object | undefined,
    authorization: string | string[] | undefined,
    entry: CachedVerification,
  ): VerifiedToken {
    // Only a single header can be remembered (extractBearerToken refused arrays).
    if (connection !== undefined && typeof authorization === 'string') {
      this.cache.remember(connection, authorization, entry);
    }
    return entry.token;
  }

  /**
   * Synchronous fast path for a connection that presents the same `Authorization` header again:
   * returns the token {@link verifyAuthorization} verified for this connection when `authorization`
   * is byte-identical to that request's header and the verification is still reusable (the cache's
   * one rule: within its time, its key still held), after the checks every reuse makes (the
   * issuer's keys not stale; the RFC 8705 binding against this request's certificate). Returns
   * `undefined` when there is nothing to reuse: the caller then runs the full check, which refuses
   * with the usual code. Throws `ShieldError` when the binding or the key set fails.
   */
  recall(connection: object, authorization: string, ctx?: VerifyContext): VerifiedToken | undefined {
    const entry = this.cache.recall(connection, authorization, this.now());
    return entry === undefined ? undefined : this.reuse(entry, ctx).token;
  }

  /** Refetches every remote key set now (for an operator who knows the IdP rotated). */
  async refreshKeys(): Promise<void> {
    await Promise.all(
      [...this.byIssuer.values()].filter(({ keySet }) => keySet.remote).map(({ keySet }) => keySet.refresh()),
    );
  }

  /** Fetch counts, key counts and cache figures. */
  stats(): TokenVerifierStats {
    const issuers: Record<string, IssuerKeySetStats> = {};
    for (const [name, { keySet }] of this.byIssuer) issuers[name] = keySet.stats();
    return {
      issuers,
      cacheHits: this.cache.hits,
      cacheMisses: this.cache.misses,
      cacheEntries: this.cache.size,
      connectionMemoHits: this.cache.connectionHits,
      ...(this.introspector ? { introspection: this.introspector.stats() } : {}),
    };
  }

  /** Aborts fetches in flight, stops retries, closes the per-issuer agents, empties the cache. */
  async close(): Promise<void> {
    this.stopTelemetry();
    this.abort.abort();
    await Promise.all([...this.byIssuer.values()].map(({ keySet }) => keySet.close()));
    await this.introspector?.close();
    this.cache.clear();
  }

  /**
   * The whole check of one token: size, cache, strict decode, issuer, key, signature, claims,
   * binding. Synchronous (a result, or a thrown refusal) unless it has to wait for a key lookup,
   * an introspection or a JWT-SVID bundle.
   */
  private check(
    token: string,
    ctx: VerifyContext | undefined,
  ): CachedVerification | Promise<CachedVerification> {
    // Size first: nothing else reads a token before this comparison.
    if (typeof token !== 'string' || token.length === 0) throw new ShieldError('ERR_TOKEN_MALFORMED');
    if (token.length > this.options.maxTokenBytes) throw new ShieldError('ERR_TOKEN_TOO_LARGE');

    // An opaque token names no issuer: the configured one introspects it (RFC 7662), with its own
    // single-flight cache. The binding is checked on every use, as for a JWT.
    if (this.introspector !== undefined && isOpaqueToken(token)) return this.introspect(token, ctx);

    // The cache is keyed by the hash of the exact bytes, and every check below is a function of
    // those bytes, the clock and the key set: a hit only has to pass the cache's reuse rule (time,
    // key still held) and the checks of {@link reuse} (keys not stale, binding).
    const cacheKey = this.options.cacheMaxEntries > 0 ? VerifiedTokenCache.keyOf(token) : undefined;
    if (cacheKey !== undefined) {
      const hit = this.cache.get(cacheKey, this.now());
      if (hit) return this.reuse(hit, ctx);
    }

    const jws = inspectCompactJws(token, this.options.maxTokenBytes);
    const claims = decodeClaims(jws);
    // Issuer mix-up: the token names its issuer, and only that issuer's keys and rules apply.
    const iss = claims['iss'];
    // A SPIFFE JWT-SVID may carry no `iss`, or one of its own: it is routed by its `sub`.
    const svids = this.options.jwtSvids;
    if (svids !== undefined && isJwtSvidCandidate(claims, this.byIssuer)) {
      return this.checkJwtSvid(svids, token, jws, claims, ctx);
    }
    if (typeof iss !== 'string') throw new ShieldError('ERR_TOKEN_CLAIM_INVALID', { detail: 'claim "iss"' });
    const runtime = this.byIssuer.get(iss);
    if (!runtime) throw new ShieldError('ERR_TOKEN_ISSUER_UNKNOWN');
    assertAlgorithmAllowed(jws, runtime.options.algorithms);
    this.assertKeysUsable(runtime);

    // A key already handed out is used at once; a lookup (first use, unknown `kid`) is waited for.
    const known = runtime.keySet.knownKey(jws.header);
    if (known !== undefined) return this.finish(runtime, jws, claims, known, cacheKey, ctx);
    return runtime.keySet
      .resolveKey(jws.header)
      .then((key) => this.finish(runtime, jws, claims, key, cacheKey, ctx));
  }

  /** Signature, claims, the cache entry and the binding: the end of {@link check}, synchronous. */
  private finish(
    runtime: IssuerRuntime,
    jws: InspectedJws,
    claims: Record<string, unknown>,
    key: ResolvedKey,
    cacheKey: string | undefined,
    ctx: VerifyContext | undefined,
  ): CachedVerification {
    assertSignature(jws, key);
    const nowMs = this.now();
    checkRegisteredClaims(jws.header, claims, runtime, nowMs);
    const verified = toVerifiedToken(claims, runtime.options, nowMs);
    const entry: CachedVerification = {
      token: verified,
      key,
      validUntilMs: Math.min(
        (verified.expiresAt + runtime.options.clockToleranceSeconds) * 1000,
        nowMs + MAX_CACHE_TTL_MS,
      ),
    };
    // A key that left the set while this token was being checked is retired: the result is not
    // kept for reuse (it is still this request's answer, as it would have been a moment earlier).
    if (cacheKey !== undefined && key.retired !== true) this.cache.set(cacheKey, entry);
    checkBinding(verified, ctx);
    return entry;
  }

  /** An opaque token, introspected (RFC 7662); its binding is checked on every use. */
  private async introspect(token: string, ctx: VerifyContext | undefined): Promise<CachedVerification> {
    const introspector = this.introspector;
    if (introspector === undefined) throw new ShieldError('ERR_TOKEN_MALFORMED');
    const introspected = await introspector.introspect(token);
    checkBinding(introspected, ctx);
    return { token: introspected, key: INTROSPECTED, validUntilMs: 0 };
  }

  /**
   * A JWT-SVID: the keys of the JWT bundle of its `sub`'s trust domain, read now from the bundle
   * source (a key the agent drops is refused at once), `aud` against the configured audience,
   * `exp` required, `iat` not in the future. Not cached: every request is checked against the
   * bundle of the moment.
   */
  private async checkJwtSvid(
    svids: ResolvedJwtSvidOptions,
    token: string,
    jws: ReturnType<typeof inspectCompactJws>,
    claims: Record<string, unknown>,
    ctx: VerifyContext | undefined,
  ): Promise<CachedVerification> {
    const id = parseSpiffeId(String(claims['sub']));
    if (id === undefined || id.path === '') throw invalidClaim('sub');
    const issuer = svids.issuers.get(id.trustDomain);
    if (issuer === undefined) throw new ShieldError('ERR_TOKEN_ISSUER_UNKNOWN');
    assertAlgorithmAllowed(jws, svids.algorithms);
    let bundle: { readonly keys: readonly JsonWebKey[] } | undefined;
    try {
      bundle = svids.bundles.jwtBundles().get(id.trustDomain);
    } catch {
      // The Workload API source has no bundles (closed, or started without `jwtBundles`).
      throw new ShieldError('ERR_KEYSET_UNAVAILABLE', { detail: 'no JWT bundles' });
    }
    if (bundle === undefined) throw new ShieldError('ERR_TOKEN_KEY_NOT_FOUND');
    let keys = this.jwtSvidKeys.get(bundle);
    if (keys === undefined) {
      keys = createLocalJWKSet({ keys: bundle.keys.map(joseKeyOf) });
      this.jwtSvidKeys.set(bundle, keys);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: [...svids.algorithms],
        audience: [...svids.audience],
        clockTolerance: svids.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub', 'aud'],
        crit: {},
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      throw translateJoseError(err);
    }
    const verified = toVerifiedToken(payload as Record<string, unknown>, issuer, this.now());
    checkBinding(verified, ctx);
    return { token: verified, key: INTROSPECTED, validUntilMs: 0 };
  }

  /** What every reuse of a cached verification checks again: the issuer's keys now, the binding. */
  private reuse(entry: CachedVerification, ctx: VerifyContext | undefined): CachedVerification {
    const runtime = this.byIssuer.get(entry.token.issuer);
    // Entries are only made for configured issuers; fail closed if that ever changes.
    if (!runtime) throw new ShieldError('ERR_TOKEN_ISSUER_UNKNOWN');
    this.assertKeysUsable(runtime);
    checkBinding(entry.token, ctx);
    return entry;
  }

  private assertKeysUsable(runtime: IssuerRuntime): void {
    const state = runtime.keySet.state();
    // Lazy refresh: when the interval has passed, fetch in the background; this request goes on
    // with the keys held.
    runtime.keySet.maybeRefresh();
    if (state !== 'ok') throw new ShieldError('ERR_KEYSET_UNAVAILABLE', { detail: `keys ${state}` });
  }
}

/**
 * RFC 7519 §4.1 and RFC 9068 §2.2, in the order jose's `jwtVerify` made them before (the codes
 * do not change): the `typ` header (`at+jwt`, when required), `iss`, `aud`, `sub` and `exp`
 * present, `iss` this issuer's, one of our audiences in `aud`, then the NumericDates: `iat` and
 * `nbf` numbers when present, `nbf` not after now (plus the tolerance), `exp` after now (minus
 * the tolerance). {@link toVerifiedToken} checks the rest.
 */
function checkRegisteredClaims(
  header: JwsHeader,
  claims: Record<string, unknown>,
  runtime: IssuerRuntime,
  nowMs: number,
): void {
  const issuer = runtime.options;
  if (issuer.requireAccessTokenType && !isAccessTokenType(header.typ)) {
    throw new ShieldError('ERR_TOKEN_TYPE_INVALID');
  }
  for (const claim of REQUIRED_CLAIMS) if (!Object.hasOwn(claims, claim)) throw missingClaim(claim);
  if (claims['iss'] !== issuer.issuer) throw new ShieldError('ERR_TOKEN_ISSUER_UNKNOWN');
  if (!namesAudience(claims['aud'], runtime.audience)) throw new ShieldError('ERR_TOKEN_AUDIENCE_INVALID');
  const now = Math.floor(nowMs / 1000);
  const tolerance = issuer.clockToleranceSeconds;
  const iat = claims['iat'];
  if (iat !== undefined && typeof iat !== 'number') throw invalidClaim('iat');
  const nbf = claims['nbf'];
  if (nbf !== undefined) {
    if (typeof nbf !== 'number') throw invalidClaim('nbf');
    if (nbf > now + tolerance) throw new ShieldError('ERR_TOKEN_NOT_YET_VALID');
  }
  const exp = claims['exp'];
  if (typeof exp !== 'number') throw invalidClaim('exp');
  if (exp <= now - tolerance) throw new ShieldError('ERR_TOKEN_EXPIRED');
}

/** The order jose reported missing claims in: the code is the same for each, the detail names it. */
const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'exp'] as const;

/**
 * RFC 9068 §4: `typ` is `at+jwt`, or `application/at+jwt`; media types are case-insensitive
 * (RFC 2045 §5.1).
 */
function isAccessTokenType(typ: string | undefined): boolean {
  if (typeof typ !== 'string') return false;
  const lower = typ.toLowerCase();
  return lower === 'at+jwt' || lower === 'application/at+jwt';
}

/** `aud` is one of ours, or an array holding one of ours (RFC 7519 §4.1.3). */
function namesAudience(aud: unknown, ours: ReadonlySet<string>): boolean {
  if (typeof aud === 'string') return ours.has(aud);
  if (!Array.isArray(aud)) return false;
  for (const a of aud) if (typeof a === 'string' && ours.has(a)) return true;
  return false;
}

function missingClaim(claim: string): ShieldError {
  return new ShieldError('ERR_TOKEN_CLAIM_INVALID', { detail: `claim "${claim}" missing` });
}

/** The checks beyond the registered ones, and the frozen principal. */
function toVerifiedToken(
  claims: Record<string, unknown>,
  issuer: ResolvedIssuerOptions,
  nowMs: number,
): VerifiedToken {
  const sub = claims['sub'];
  // RFC 9068 §2.2: `sub` identifies the principal; an empty one identifies nobody.
  if (typeof sub !== 'string' || sub.length === 0) throw invalidClaim('sub');
  const exp = claims['exp'];
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw invalidClaim('exp');
  // jose checks `iat` only with `maxTokenAge`: a token "issued" next year would pass.
  const iat = claims['iat'];
  if (iat !== undefined) {
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidClaim('iat');
    if (iat > Math.floor(nowMs / 1000) + issuer.clockToleranceSeconds) {
      throw new ShieldError('ERR_TOKEN_ISSUED_IN_FUTURE');
    }
  }
  const aud = claims['aud'];
  let audience: string[];
  if (typeof aud === 'string') audience = [aud];
  else if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) audience = [...(aud as string[])];
  else throw invalidClaim('aud');
  const jti = claims['jti'];
  if (jti !== undefined && typeof jti !== 'string') throw invalidClaim('jti');

  const binding = bindingOf(claims);
  // The issuer's policy: a token anyone holding it could use is refused (RFC 9449 §1, RFC 8705 §3).
  if (issuer.requireSenderConstrained && Object.keys(binding).length === 0) {
    throw new ShieldError('ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED');
  }
  const token: VerifiedToken = {
    method: issuer.method,
    issuer: issuer.issuer,
    subject: sub,
    audience: Object.freeze(audience),
    scopes: Object.freeze(scopesOf(claims, issuer.scopeClaim)),
    claims: deepFreeze(claims),
    expiresAt: exp,
    ...(jti !== undefined ? { tokenId: jti } : {}),
    ...binding,
  };
  return Object.freeze(token);
}

/** RFC 6749 §3.3 `scope` (space-delimited string), or an `scp` array of strings. */
function scopesOf(claims: Record<string, unknown>, scopeClaim: string): string[] {
  const value = claims[scopeClaim] ?? (scopeClaim === 'scope' ? claims['scp'] : undefined);
  if (value === undefined) return [];
  let scopes: string[];
  if (typeof value === 'string') scopes = value.split(' ').filter((s) => s.length > 0);
  else if (Array.isArray(value) && value.every((s) => typeof s === 'string' && s.length > 0)) {
    scopes = [...(value as string[])];
  } else throw invalidClaim(scopeClaim);
  if (scopes.length > MAX_SCOPES) throw invalidClaim(scopeClaim);
  return scopes;
}

/**
 * RFC 8705 §3.1 `cnf["x5t#S256"]`, or RFC 9449 §6.1 `cnf.jkt` (the DPoP key's thumbprint): one
 * of them. Any other confirmation method is one we cannot check, so the token is refused rather
 * than accepted as a plain bearer token.
 */
function bindingOf(claims: Record<string, unknown>): {
  certificateThumbprint?: string;
  dpopKeyThumbprint?: string;
} {
  const cnf = claims['cnf'];
  if (cnf === undefined) return {};
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) throw invalidClaim('cnf');
  const members = Object.keys(cnf);
  const thumbprint = (cnf as Record<string, unknown>)['x5t#S256'];
  const jkt = (cnf as Record<string, unknown>)['jkt'];
  if (members.length === 1 && typeof jkt === 'string' && THUMBPRINT.test(jkt)) {
    return { dpopKeyThumbprint: jkt };
  }
  if (members.length !== 1 || typeof thumbprint !== 'string' || !THUMBPRINT.test(thumbprint)) {
    throw invalidClaim('cnf');
  }
  return { certificateThumbprint: thumbprint };
}

function checkBinding(token: VerifiedToken, ctx: VerifyContext | undefined): void {
  // A DPoP-bound token is only as good as the proof its caller checks (RFC 9449 §7.1): no caller
  // that promised to check one, no token.
  if (token.dpopKeyThumbprint !== undefined) {
    if (ctx?.dpop !== true) throw invalidClaim('cnf');
    return;
  }
  const bound = token.certificateThumbprint;
  if (bound === undefined) {
    if (ctx?.requireBinding) throw new ShieldError('ERR_TOKEN_BINDING_REQUIRED');
    return;
  }
  // A bound token without the certificate it is bound to is a stolen token (RFC 8705 §3).
  const cert = ctx?.clientCertificate;
  if (cert === undefined) throw new ShieldError('ERR_TOKEN_BINDING_MISMATCH');
  const presented = ctx?.clientCertificateThumbprint ?? certificateThumbprint(cert);
  if (!sameThumbprint(presented, bound)) throw new ShieldError('ERR_TOKEN_BINDING_MISMATCH');
}

/**
 * A bundle key as jose selects it: SPIFFE marks JWT-SVID keys `use: "jwt-svid"` (Trust Domain and
 * Bundle §4.2.1), which jose would skip as not `sig`; the source kept only those keys.
 */
function joseKeyOf(key: JsonWebKey): JWK {
  const { use: _use, ...rest } = key as JsonWebKey & { use?: unknown };
  return rest as JWK;
}

/**
 * A token for the JWT-SVID path: `sub` is a SPIFFE ID, and `iss` is absent or names no configured
 * issuer (a configured issuer's tokens keep that issuer's rules, whatever their `sub`).
 */
function isJwtSvidCandidate(claims: Record<string, unknown>, issuers: ReadonlyMap<string, unknown>): boolean {
  const sub = claims['sub'];
  const iss = claims['iss'];
  return (
    typeof sub === 'string' &&
    sub.startsWith('spiffe://') &&
    (iss === undefined || (typeof iss === 'string' && !issuers.has(iss)))
  );
}

function invalidClaim(claim: string): ShieldError {
  return new ShieldError('ERR_TOKEN_CLAIM_INVALID', { detail: `claim "${claim}"` });
}
