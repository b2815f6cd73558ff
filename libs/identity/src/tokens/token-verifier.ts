import { timingSafeEqual, type KeyObject, type X509Certificate } from 'node:crypto';
import { fetch as undiciFetch } from 'undici';
import { deepFreeze, ShieldError } from '@inference-shield/core';
import { loadCaSource } from '@inference-shield/core/internal';
import { jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { extractBearerToken } from './bearer-token.js';
import { certificateThumbprint, sameThumbprint } from './certificate-thumbprint.js';
import { IssuerKeySet, type IssuerKeySetStats, type ResolvedKey } from './issuer-key-set.js';
import { translateJoseError } from './jose-error.mapping.js';
import { decodeClaims, inspectCompactJws } from './jws-inspect.js';
import type { JwksFetch } from './jwks-fetch.js';
import { assertAlgorithmAllowed } from './jws-signature.js';
import type {
  ResolvedIssuerOptions,
  ResolvedTokenVerifierOptions,
} from './token-verifier-options.interface.js';
import { MAX_CACHE_TTL_MS, VerifiedTokenCache } from './verified-token-cache.js';
import type { VerifiedToken } from './verified-token.interface.js';

/** Per-request facts the token may be bound to. */
export interface VerifyContext {
  /** The verified TLS client certificate of this connection (DER or X509Certificate), for RFC 8705. */
  readonly clientCertificate?: Buffer | X509Certificate;
  /** Refuse tokens that are not certificate-bound (a route that demands RFC 8705 tokens). */
  readonly requireBinding?: boolean;
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
}

interface IssuerRuntime {
  readonly options: ResolvedIssuerOptions;
  readonly keySet: IssuerKeySet;
  readonly jwtOptions: JWTVerifyOptions;
}

/** A verification, with what decides how long it may be reused. */
interface Checked {
  readonly token: VerifiedToken;
  readonly key: ResolvedKey;
  readonly runtime: IssuerRuntime;
  /** Same bound as the verified-token cache: `exp` plus the tolerance, at most 5 minutes. */
  readonly validUntilMs: number;
  /** The issuer's key generation when the check started. */
  readonly generation: number;
}

/**
 * The last verification of one connection, keyed by the exact `Authorization` header bytes. It
 * holds that header (so the token) for as long as the connection lives, as the connection's own
 * buffers did: never logged, never in `stats()`, gone with the socket or at `close()`.
 */
interface ConnectionMemo {
  /** The header's bytes (ASCII: it passed the bearer syntax). */
  readonly header: Buffer;
  /** Same length as `header`: where a candidate header is encoded, so a comparison allocates nothing. */
  readonly scratch: Buffer;
  readonly token: VerifiedToken;
  readonly runtime: IssuerRuntime;
  readonly validUntilMs: number;
  readonly generation: number;
}

/** RFC 8705 §3.1: a base64url SHA-256 is 43 characters. */
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const MAX_SCOPES = 256;

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
  private readonly cache: VerifiedTokenCache;
  private readonly abort = new AbortController();
  // One entry per live connection (the WeakMap lets it go with the socket): bounded by construction.
  private memo = new WeakMap<object, ConnectionMemo>();
  private memoHits = 0;

  private constructor(
    private readonly options: ResolvedTokenVerifierOptions,
    private readonly now: () => number,
    fetch: JwksFetch,
    cas: readonly (Buffer | undefined)[],
  ) {
    this.cache = new VerifiedTokenCache(options.cacheMaxEntries);
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
        // Built once: what jose checks on every token of this issuer.
        jwtOptions: {
          algorithms: [...issuer.algorithms],
          issuer: issuer.issuer,
          audience: [...issuer.audience],
          clockTolerance: issuer.clockToleranceSeconds,
          requiredClaims: ['exp', 'sub', 'iss', 'aud'],
          crit: {},
          ...(issuer.requireAccessTokenType ? { typ: 'at+jwt' } : {}),
        },
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

  /** Resolves when {@link ready} becomes true. */
  async whenReady(): Promise<void> {
    await Promise.all([...this.byIssuer.values()].map(({ keySet }) => keySet.whenLoaded()));
  }

  /**
   * Verifies an access token. Throws `ShieldError` (`ERR_TOKEN_*`, or `ERR_KEYSET_UNAVAILABLE`
   * while the issuer's keys are not loaded or too stale).
   */
  async verify(token: string, ctx?: VerifyContext): Promise<VerifiedToken> {
    return (await this.verifyWithKey(token, ctx)).token;
  }

  /** As {@link verify}, and also returns the key (public key or shared secret) that verified the token. */
  async verifyWithKey(token: string, ctx?: VerifyContext): Promise<{ token: VerifiedToken; key: KeyObject }> {
    const checked = await this.check(token, ctx);
    return { token: checked.token, key: checked.key.keyObject() };
  }

  /**
   * Verifies the bearer token of an `Authorization` header received on `connection` (the request's
   * socket), as {@link verify} does, and remembers the result for that connection, so that the
   * next request presenting the byte-identical header on the same connection can be answered by
   * {@link recall} without hashing or parsing the token again. Throws `ERR_TOKEN_MISSING` when the
   * header holds no bearer credential (absent, or another scheme), and every code of `verify`.
   *
   * @example
   * const token = verifier.recall(req.socket, header, ctx) ?? (await verifier.verifyAuthorization(req.socket, header, ctx));
   */
  async verifyAuthorization(
    connection: object,
    authorization: string | string[] | undefined,
    ctx?: VerifyContext,
  ): Promise<VerifiedToken> {
    const token = extractBearerToken(authorization, this.options.maxTokenBytes);
    const checked = await this.check(token, ctx);
    // Only a single header can be remembered (extractBearerToken refused arrays); not with the
    // cache off, which means "verify every request".
    if (typeof authorization === 'string' && this.options.cacheMaxEntries > 0) {
      this.memo.set(connection, {
        header: Buffer.from(authorization, 'utf8'),
        scratch: Buffer.alloc(Buffer.byteLength(authorization, 'utf8')),
        token: checked.token,
        runtime: checked.runtime,
        validUntilMs: checked.validUntilMs,
        generation: checked.generation,
      });
    }
    return checked.token;
  }

  /**
   * Synchronous fast path for a connection that presents the same `Authorization` header again:
   * returns the token {@link verifyAuthorization} verified for this connection when `authorization`
   * is byte-identical to that request's header, after the checks a verified-token cache hit makes
   * (the entry's time: `exp` plus tolerance, at most 5 minutes; the issuer's keys still usable; the
   * key generation unchanged, so a key that left the set is never trusted; the RFC 8705 binding
   * against this request's certificate). Returns `undefined` when there is nothing to reuse, or
   * when the entry's time or key generation has passed: the caller then runs the full check, which
   * refuses with the usual code. Throws `ShieldError` when the binding or the key set fails.
   */
  recall(connection: object, authorization: string, ctx?: VerifyContext): VerifiedToken | undefined {
    const entry = this.memo.get(connection);
    if (entry === undefined || !sameHeader(entry, authorization)) return undefined;
    if (this.now() >= entry.validUntilMs || entry.runtime.keySet.generation !== entry.generation) {
      this.memo.delete(connection);
      return undefined;
    }
    this.assertKeysUsable(entry.runtime);
    checkBinding(entry.token, ctx);
    this.memoHits++;
    return entry.token;
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
      connectionMemoHits: this.memoHits,
    };
  }

  /** Aborts fetches in flight, stops retries, closes the per-issuer agents, empties the cache. */
  async close(): Promise<void> {
    this.abort.abort();
    await Promise.all([...this.byIssuer.values()].map(({ keySet }) => keySet.close()));
    this.cache.clear();
    this.memo = new WeakMap();
  }

  /** The whole check of one token: size, cache, strict decode, issuer, key, signature, claims, binding. */
  private async check(token: string, ctx: VerifyContext | undefined): Promise<Checked> {
    // Size first: nothing else reads a token before this comparison.
    if (typeof token !== 'string' || token.length === 0) throw new ShieldError('ERR_TOKEN_MALFORMED');
    if (token.length > this.options.maxTokenBytes) throw new ShieldError('ERR_TOKEN_TOO_LARGE');

    // The cache is keyed by the hash of the exact bytes, and every check below is a function of
    // those bytes, the clock and the key set: a hit only has to re-check the clock (entries end
    // at `exp`), the key set (entries leave with their key) and the binding (per connection).
    const cacheKey = this.options.cacheMaxEntries > 0 ? VerifiedTokenCache.keyOf(token) : undefined;
    if (cacheKey !== undefined) {
      const hit = this.cache.get(cacheKey, this.now());
      if (hit) {
        const runtime = this.byIssuer.get(hit.token.issuer);
        if (runtime) {
          this.assertKeysUsable(runtime);
          checkBinding(hit.token, ctx);
          // Entries whose key left were dropped when the generation moved: this one is current.
          const generation = runtime.keySet.generation;
          return { token: hit.token, key: hit.key, runtime, validUntilMs: hit.validUntilMs, generation };
        }
      }
    }

    const jws = inspectCompactJws(token, this.options.maxTokenBytes);
    const claims = decodeClaims(jws);
    // Issuer mix-up: the token names its issuer, and only that issuer's keys and rules apply.
    const iss = claims['iss'];
    if (typeof iss !== 'string') throw new ShieldError('ERR_TOKEN_CLAIM_INVALID', { detail: 'claim "iss"' });
    const runtime = this.byIssuer.get(iss);
    if (!runtime) throw new ShieldError('ERR_TOKEN_ISSUER_UNKNOWN');
    assertAlgorithmAllowed(jws, runtime.options.algorithms);
    this.assertKeysUsable(runtime);

    const startGeneration = runtime.keySet.generation;
    const key = await runtime.keySet.resolveKey(jws.header);
    // The generation of the key set the key came from: if keys change while this token is being
    // checked, the result is not kept for reuse (its key may be the one that left).
    const generation = key.generation ?? startGeneration;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.key, {
        ...runtime.jwtOptions,
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      throw translateJoseError(err);
    }
    const nowMs = this.now();
    const verified = toVerifiedToken(payload, runtime.options, nowMs);
    const validUntilMs = Math.min(
      (verified.expiresAt + runtime.options.clockToleranceSeconds) * 1000,
      nowMs + MAX_CACHE_TTL_MS,
    );
    if (cacheKey !== undefined && runtime.keySet.generation === generation) {
      this.cache.set(cacheKey, { token: verified, key, validUntilMs });
    }
    checkBinding(verified, ctx);
    return { token: verified, key, runtime, validUntilMs, generation };
  }

  private assertKeysUsable(runtime: IssuerRuntime): void {
    const state = runtime.keySet.state();
    // Lazy refresh: when the interval has passed, fetch in the background; this request goes on
    // with the keys held.
    runtime.keySet.maybeRefresh();
    if (state !== 'ok') throw new ShieldError('ERR_KEYSET_UNAVAILABLE', { detail: `keys ${state}` });
  }
}

/** The extra checks jose does not make, and the frozen principal. */
function toVerifiedToken(payload: JWTPayload, issuer: ResolvedIssuerOptions, nowMs: number): VerifiedToken {
  const claims = payload as Record<string, unknown>;
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

  const token: VerifiedToken = {
    method: issuer.method,
    issuer: issuer.issuer,
    subject: sub,
    audience: Object.freeze(audience),
    scopes: Object.freeze(scopesOf(claims, issuer.scopeClaim)),
    claims: deepFreeze(claims),
    expiresAt: exp,
    ...(jti !== undefined ? { tokenId: jti } : {}),
    ...bindingOf(claims),
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
 * RFC 8705 §3.1: `cnf["x5t#S256"]`. Any other confirmation method (DPoP's `jkt`, ...) is one
 * we cannot check, so the token is refused rather than accepted as a plain bearer token.
 */
function bindingOf(claims: Record<string, unknown>): { certificateThumbprint?: string } {
  const cnf = claims['cnf'];
  if (cnf === undefined) return {};
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) throw invalidClaim('cnf');
  const members = Object.keys(cnf);
  const thumbprint = (cnf as Record<string, unknown>)['x5t#S256'];
  if (members.length !== 1 || typeof thumbprint !== 'string' || !THUMBPRINT.test(thumbprint)) {
    throw invalidClaim('cnf');
  }
  return { certificateThumbprint: thumbprint };
}

function checkBinding(token: VerifiedToken, ctx: VerifyContext | undefined): void {
  const bound = token.certificateThumbprint;
  if (bound === undefined) {
    if (ctx?.requireBinding) throw new ShieldError('ERR_TOKEN_BINDING_REQUIRED');
    return;
  }
  // A bound token without the certificate it is bound to is a stolen token (RFC 8705 §3).
  const cert = ctx?.clientCertificate;
  if (cert === undefined || !sameThumbprint(certificateThumbprint(cert), bound)) {
    throw new ShieldError('ERR_TOKEN_BINDING_MISMATCH');
  }
}

/**
 * Whether a header is byte-identical to a remembered one, in time independent of where they
 * differ: on a connection shared by several clients (a gateway's pool), the remembered header is
 * another client's token, and an early-exit comparison would leak how much of it a guess matched.
 */
function sameHeader(entry: ConnectionMemo, header: string): boolean {
  const { header: remembered, scratch } = entry;
  // The remembered header is ASCII, one byte per character: another length is another header.
  if (header.length !== remembered.length) return false;
  // A non-ASCII character encodes to bytes >= 0x80 (or does not fit): never equal to ASCII bytes.
  if (scratch.write(header, 0, 'utf8') !== remembered.length) return false;
  return timingSafeEqual(remembered, scratch);
}

function invalidClaim(claim: string): ShieldError {
  return new ShieldError('ERR_TOKEN_CLAIM_INVALID', { detail: `claim "${claim}"` });
}
