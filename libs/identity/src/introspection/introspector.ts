import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Agent, fetch as undiciFetch } from 'undici';
import {
  deepFreeze,
  loadCaSource,
  loadTlsBundle,
  readBoundedFile,
  ShieldError,
  type ShieldErrorCode,
} from '@inference-shield/core/internal';
import { importPKCS8 } from 'jose';
import {
  ClientSecretBasic,
  customFetch,
  introspectionRequest,
  PrivateKeyJwt,
  processIntrospectionResponse,
  TlsClientAuth,
  type AuthorizationServer,
  type Client,
  type ClientAuth,
} from 'oauth4webapi';
import type { JwksFetch } from '../tokens/jwks-fetch.js';
import { parseStrictJson } from '../tokens/strict-json.js';
import type { ResolvedIssuerOptions } from '../tokens/token-verifier-options.interface.js';
import type { VerifiedToken } from '../tokens/verified-token.interface.js';
import { defaultAlgorithm, readPrivateKey } from './private-key.js';
import type { ResolvedIntrospectionOptions } from './introspection-options.interface.js';

/** Largest introspection answer read; the rest is never buffered. */
export const MAX_INTROSPECTION_RESPONSE_BYTES = 64 * 1024;
/** RFC 8705 §3.1: a base64url SHA-256 is 43 characters. */
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const MAX_SCOPES = 256;
/** One warning per this period at most: an IdP outage must not flood the logs. */
const LOG_INTERVAL_MS = 10_000;

/**
 * Whether a bearer token is opaque (RFC 6749 §1.4: a string the resource server cannot read),
 * i.e. not in JWS compact form. A token holding any `.` is left to the JWT path, which refuses a
 * malformed JWS, a JWE or a nested token exactly as before: introspection never widens what a
 * JWT-shaped string can do.
 */
export function isOpaqueToken(token: string): boolean {
  return !token.includes('.');
}

/** What one introspection ends in; kept per token hash, shared by concurrent requests. */
type Outcome =
  | { readonly kind: 'active'; readonly token: VerifiedToken }
  | { readonly kind: 'refused'; readonly code: ShieldErrorCode; readonly detail?: string }
  | { readonly kind: 'unavailable' };

interface CacheEntry {
  readonly outcome: Outcome;
  readonly untilMs: number;
}

/** Figures for monitoring and tests (no token, no hash). */
export interface IntrospectionStats {
  /** Calls made to the introspection endpoint. */
  readonly calls: number;
  /** Requests answered from the cache. */
  readonly cacheHits: number;
  /** Requests that joined a call already in flight for the same token. */
  readonly sharedCalls: number;
  /** Calls that ended without a usable answer (unreachable, timeout, 5xx, invalid answer). */
  readonly failures: number;
  readonly cacheEntries: number;
}

/** Injected for tests: a clock and the fetch (undici-compatible: it receives a `dispatcher`). */
export interface IntrospectorDeps {
  readonly now: () => number;
  readonly fetch?: JwksFetch;
  /** Aborted when the verifier closes: no call outlives it. */
  readonly closed: AbortSignal;
}

/**
 * RFC 7662 token introspection of one issuer's opaque access tokens, with oauth4webapi for the
 * request and the client authentication (`private_key_jwt`, `tls_client_auth`, or an opted-in
 * `client_secret_basic`), over its own undici Agent (the issuer's CA, the client certificate).
 *
 * - Single-flight per token: concurrent requests with one token make one call.
 * - Cached by the SHA-256 of the token (never the token), bounded in size, each answer no longer
 *   than the token's `exp` and `maxCacheSeconds`.
 * - Bounded in time (`timeoutMs`, connection included) and in concurrency (`maxConcurrent`).
 * - Fails closed: unreachable, timeout, 5xx, a refused client authentication or an unreadable
 *   answer is `503 ERR_INTROSPECTION_UNAVAILABLE`, never an accepted token.
 */
export class Introspector {
  private readonly logger = new Logger('ShieldIntrospection');
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<Outcome>>();
  private readonly as: AuthorizationServer;
  private readonly client: Client;
  private calls = 0;
  private cacheHits = 0;
  private sharedCalls = 0;
  private failures = 0;
  private lastLogMs = Number.NEGATIVE_INFINITY;

  private constructor(
    private readonly issuer: ResolvedIssuerOptions,
    private readonly options: ResolvedIntrospectionOptions,
    private readonly clientAuth: ClientAuth,
    private readonly agent: Agent,
    private readonly deps: IntrospectorDeps,
    private readonly fetch: JwksFetch,
    private readonly maxEntries: number,
  ) {
    // Built from the configuration: no discovery call, so nothing an attacker serves can move the endpoint.
    this.as = { issuer: issuer.issuer, introspection_endpoint: options.endpoint };
    this.client = { client_id: options.clientId };
  }

  /**
   * Reads the client's credentials (key, certificate, secret) and builds the agent. A missing or
   * bad credential throws, naming the field (never its content), so `app.init()` fails.
   */
  static async create(
    issuer: ResolvedIssuerOptions,
    options: ResolvedIntrospectionOptions,
    field: string,
    deps: IntrospectorDeps,
    maxEntries: number,
  ): Promise<Introspector> {
    const auth = options.clientAuth;
    const ca = options.ca === undefined ? undefined : loadCaSource(`${field}.ca`, options.ca);
    let clientAuth: ClientAuth;
    let cert: { cert: Buffer; key: Buffer } | undefined;
    switch (auth.method) {
      case 'private_key_jwt': {
        const keyObject = readPrivateKey(`${field}.clientAuth.key`, auth.key);
        const alg = auth.alg ?? defaultAlgorithm(`${field}.clientAuth`, keyObject);
        let key: Awaited<ReturnType<typeof importPKCS8>>;
        try {
          key = await importPKCS8(keyObject.export({ type: 'pkcs8', format: 'pem' }).toString(), alg);
        } catch (err) {
          throw new TypeError(`"${field}.clientAuth.key" cannot sign with ${alg}`, { cause: err });
        }
        clientAuth = PrivateKeyJwt(auth.kid === undefined ? key : { key, kid: auth.kid });
        break;
      }
      case 'tls_client_auth': {
        // Read and checked by core (expiry, key match, clientAuth EKU): a bad pair stops the app.
        const bundle = loadTlsBundle({ cert: auth.cert, key: auth.key }, { usage: 'client' });
        cert = { cert: bundle.cert, key: bundle.key };
        clientAuth = TlsClientAuth();
        break;
      }
      case 'client_secret_basic': {
        const secret = readSecret(`${field}.clientAuth.secret`, auth.secret);
        // oauth4webapi sends it in the Authorization header (RFC 6749 §2.3.1), never in the URL or body.
        clientAuth = ClientSecretBasic(secret);
        break;
      }
    }
    const agent = new Agent({
      connect: {
        // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 cannot turn it off.
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        timeout: options.timeoutMs,
        ...(ca !== undefined ? { ca } : {}),
        ...(cert ?? {}),
      },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connections: Math.min(options.maxConcurrent, 16),
    });
    return new Introspector(
      issuer,
      options,
      clientAuth,
      agent,
      deps,
      deps.fetch ?? undiciFetch,
      Math.max(1, maxEntries),
    );
  }

  /**
   * Checks one opaque token: the cache, else one call shared by every concurrent request with the
   * same token. Returns the verified token, or throws a `ShieldError`: `ERR_TOKEN_INACTIVE` (and
   * the other `ERR_TOKEN_*` codes for an active token that is not for us), or
   * `ERR_INTROSPECTION_UNAVAILABLE` when no usable answer came.
   */
  async introspect(token: string): Promise<VerifiedToken> {
    const key = createHash('sha256').update(token).digest('base64url');
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      if (this.deps.now() < cached.untilMs) {
        this.cacheHits++;
        return settle(cached.outcome);
      }
      this.cache.delete(key);
    }
    let pending = this.inFlight.get(key);
    if (pending !== undefined) {
      this.sharedCalls++;
    } else {
      if (this.inFlight.size >= this.options.maxConcurrent) {
        this.warn(`${this.inFlight.size} introspection calls already in flight`);
        throw new ShieldError('ERR_INTROSPECTION_UNAVAILABLE', { detail: 'too many calls in flight' });
      }
      pending = this.call(token, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return settle(await pending);
  }

  stats(): IntrospectionStats {
    return {
      calls: this.calls,
      cacheHits: this.cacheHits,
      sharedCalls: this.sharedCalls,
      failures: this.failures,
      cacheEntries: this.cache.size,
    };
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.agent.close();
  }

  private async call(token: string, key: string): Promise<Outcome> {
    this.calls++;
    let outcome: Outcome;
    try {
      outcome = this.judge(await this.request(token));
    } catch (err) {
      this.failures++;
      this.warn(`introspection at ${this.options.endpoint} failed: ${reasonOf(err)}`);
      return { kind: 'unavailable' };
    }
    this.remember(key, outcome);
    return outcome;
  }

  /** One POST to the endpoint; the parsed answer, or a throw for anything that is not one. */
  private async request(token: string): Promise<Record<string, unknown>> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.deps.closed]);
    const response = await introspectionRequest(this.as, this.client, this.clientAuth, token, {
      signal,
      [customFetch]: (url, init) => this.send(url, init),
    });
    if (response.status !== 200) throw new IntrospectionFailure(`HTTP ${response.status}`);
    // Duplicate members are refused (JSON.parse would keep the last `active`).
    const text = await response.clone().text();
    try {
      parseStrictJson(text);
    } catch (err) {
      throw new IntrospectionFailure('an answer that is not strict JSON', { cause: err });
    }
    const answer = await processIntrospectionResponse(this.as, this.client, response);
    return answer as unknown as Record<string, unknown>;
  }

  /**
   * oauth4webapi's transport: our agent (CA, client certificate), no redirect followed (one could
   * lead to http or another host with the token), the whole exchange under the timeout, the answer
   * read up to {@link MAX_INTROSPECTION_RESPONSE_BYTES} and handed back as a plain `Response`.
   */
  private async send(
    url: string,
    init: { body: unknown; headers: Record<string, string>; method: string; signal?: AbortSignal },
  ): Promise<Response> {
    const res = await this.fetch(url, {
      method: init.method,
      headers: init.headers,
      body: init.body as string | URLSearchParams,
      dispatcher: this.agent,
      redirect: 'error',
      ...(init.signal !== undefined ? { signal: init.signal } : {}),
    });
    try {
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > MAX_INTROSPECTION_RESPONSE_BYTES) throw new IntrospectionFailure('an oversized answer');
      const chunks: Uint8Array[] = [];
      let size = 0;
      if (res.body) {
        for await (const chunk of res.body) {
          size += chunk.byteLength;
          if (size > MAX_INTROSPECTION_RESPONSE_BYTES) throw new IntrospectionFailure('an oversized answer');
          chunks.push(chunk);
        }
      }
      const headers = new Headers();
      const type = res.headers.get('content-type');
      if (type !== null) headers.set('content-type', type);
      return new Response(Buffer.concat(chunks, size), { status: res.status, headers });
    } finally {
      await res.body?.cancel().catch(() => undefined);
    }
  }

  /** RFC 7662 §2.2 and our rules: what an answer means for this resource server. */
  private judge(answer: Record<string, unknown>): Outcome {
    if (answer['active'] !== true) return { kind: 'refused', code: 'ERR_TOKEN_INACTIVE' };
    const issuer = this.issuer;
    const nowS = Math.floor(this.deps.now() / 1000);
    const skew = issuer.clockToleranceSeconds;
    // Issuer mix-up: an answer naming another issuer is not this issuer's token.
    const iss = answer['iss'];
    if (iss !== undefined && iss !== issuer.issuer)
      return { kind: 'refused', code: 'ERR_TOKEN_ISSUER_UNKNOWN' };
    // `exp` is required here (optional in RFC 7662): without it nothing bounds the token's reuse.
    const exp = answer['exp'];
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return refusedClaim('exp');
    if (exp + skew <= nowS) return { kind: 'refused', code: 'ERR_TOKEN_EXPIRED' };
    const nbf = answer['nbf'];
    if (nbf !== undefined) {
      if (typeof nbf !== 'number' || !Number.isFinite(nbf)) return refusedClaim('nbf');
      if (nbf > nowS + skew) return { kind: 'refused', code: 'ERR_TOKEN_NOT_YET_VALID' };
    }
    const iat = answer['iat'];
    if (iat !== undefined) {
      if (typeof iat !== 'number' || !Number.isFinite(iat)) return refusedClaim('iat');
      if (iat > nowS + skew) return { kind: 'refused', code: 'ERR_TOKEN_ISSUED_IN_FUTURE' };
    }
    // RFC 8707 / RFC 9068 §4: an active token for another resource server is not for us. An answer
    // without `aud` cannot show it is ours: refused.
    const aud = answer['aud'];
    let audience: string[];
    if (typeof aud === 'string') audience = [aud];
    else if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) audience = [...(aud as string[])];
    else return { kind: 'refused', code: 'ERR_TOKEN_AUDIENCE_INVALID' };
    if (!audience.some((a) => issuer.audience.includes(a))) {
      return { kind: 'refused', code: 'ERR_TOKEN_AUDIENCE_INVALID' };
    }
    const binding = bindingOf(answer['cnf']);
    if (binding === 'invalid') return refusedClaim('cnf');
    // The issuer's policy holds for its opaque tokens as for its JWTs: a token anyone holding it
    // could use is refused (RFC 9449 §1, RFC 8705 §3).
    if (issuer.requireSenderConstrained && binding === undefined) {
      return { kind: 'refused', code: 'ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED' };
    }
    // RFC 7662 §2.2 `token_type`: `Bearer`, or `DPoP` for a token bound to a DPoP key (RFC 9449
    // §6.2), whose proof the decider then checks on every request as for a JWT (`cnf.jkt`).
    const tokenType = answer['token_type'];
    if (tokenType !== undefined) {
      const type = typeof tokenType === 'string' ? tokenType.toLowerCase() : undefined;
      if (
        type !== 'bearer' &&
        !(type === 'dpop' && binding !== undefined && 'dpopKeyThumbprint' in binding)
      ) {
        return { kind: 'refused', code: 'ERR_TOKEN_TYPE_INVALID' };
      }
    }
    // RFC 7662 `sub` is optional; a client-credentials token's principal is its client (RFC 9068 §2.2).
    const sub = answer['sub'];
    const clientId = answer['client_id'];
    let subject: string;
    if (typeof sub === 'string' && sub.length > 0) subject = sub;
    else if (sub === undefined && typeof clientId === 'string' && clientId.length > 0) subject = clientId;
    else return refusedClaim('sub');
    const jti = answer['jti'];
    if (jti !== undefined && typeof jti !== 'string') return refusedClaim('jti');
    const scopes = scopesOf(answer['scope']);
    if (scopes === undefined) return refusedClaim('scope');

    const token: VerifiedToken = {
      method: issuer.method,
      issuer: issuer.issuer,
      subject,
      audience: Object.freeze(audience),
      scopes: Object.freeze(scopes),
      claims: deepFreeze({ ...answer }),
      expiresAt: exp,
      ...(typeof jti === 'string' ? { tokenId: jti } : {}),
      ...binding,
    };
    return { kind: 'active', token: Object.freeze(token) };
  }

  /** Kept no longer than `maxCacheSeconds`, and an active answer no longer than its `exp`. */
  private remember(key: string, outcome: Outcome): void {
    if (this.options.maxCacheSeconds === 0 || outcome.kind === 'unavailable') return;
    const nowMs = this.deps.now();
    let untilMs = nowMs + this.options.maxCacheSeconds * 1000;
    if (outcome.kind === 'active') untilMs = Math.min(untilMs, outcome.token.expiresAt * 1000);
    if (untilMs <= nowMs) return;
    this.cache.delete(key);
    this.cache.set(key, { outcome, untilMs });
    while (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cache.delete(oldest.value);
    }
  }

  private warn(message: string): void {
    const now = this.deps.now();
    if (now - this.lastLogMs < LOG_INTERVAL_MS) return;
    this.lastLogMs = now;
    this.logger.warn(message);
  }
}

/** A fresh error per request (never one instance shared across requests). */
function settle(outcome: Outcome): VerifiedToken {
  switch (outcome.kind) {
    case 'active':
      return outcome.token;
    case 'refused':
      throw new ShieldError(outcome.code, outcome.detail !== undefined ? { detail: outcome.detail } : {});
    case 'unavailable':
      throw new ShieldError('ERR_INTROSPECTION_UNAVAILABLE');
  }
}

function refusedClaim(claim: string): Outcome {
  return { kind: 'refused', code: 'ERR_TOKEN_CLAIM_INVALID', detail: `claim "${claim}"` };
}

/** RFC 6749 §3.3: a space-delimited string; `undefined` when the value is not one. */
function scopesOf(value: unknown): string[] | undefined {
  if (value === undefined) return [];
  if (typeof value !== 'string') return undefined;
  const scopes = value.split(' ').filter((s) => s.length > 0);
  return scopes.length > MAX_SCOPES ? undefined : scopes;
}

/**
 * The confirmation of an introspected token, as for a JWT: RFC 8705 §3.2 `cnf["x5t#S256"]` (checked
 * against the connection's client certificate) or RFC 9449 §6.2 `cnf.jkt` (the DPoP key, whose
 * proof the decider checks; without `dpop` configured the token is refused). One of them; any
 * other member is one we cannot check, so the token is refused rather than taken as a bearer one.
 */
function bindingOf(
  cnf: unknown,
): { certificateThumbprint: string } | { dpopKeyThumbprint: string } | undefined | 'invalid' {
  if (cnf === undefined) return undefined;
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) return 'invalid';
  const members = Object.keys(cnf);
  if (members.length !== 1) return 'invalid';
  const thumbprint = (cnf as Record<string, unknown>)['x5t#S256'];
  if (typeof thumbprint === 'string' && THUMBPRINT.test(thumbprint))
    return { certificateThumbprint: thumbprint };
  const jkt = (cnf as Record<string, unknown>)['jkt'];
  if (typeof jkt === 'string' && THUMBPRINT.test(jkt)) return { dpopKeyThumbprint: jkt };
  return 'invalid';
}

function readSecret(field: string, source: { env: string } | { file: string }): string {
  let secret: string | undefined;
  if ('env' in source) secret = process.env[source.env];
  else secret = readBoundedFile(source.file, 'client secret', 4096).toString('utf8').trim();
  if (secret === undefined || secret.length === 0) {
    const where = 'env' in source ? `environment variable ${source.env}` : `file ${source.file}`;
    throw new TypeError(`"${field}": ${where} is empty or not set`);
  }
  return secret;
}

/** A failure whose message is ours (a status, a size): safe to log. */
class IntrospectionFailure extends Error {
  override readonly name = 'IntrospectionFailure';
}

/** A short, safe reason: our own message, an error code (undici, TLS, DNS) or the class; never a body. */
function reasonOf(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (e instanceof IntrospectionFailure) return e.message;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (e.name === 'TimeoutError') return 'timeout';
    if (e.name === 'AbortError') return 'aborted';
    e = e.cause;
  }
  return err instanceof Error ? err.name : 'unknown error';
}
