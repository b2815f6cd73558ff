/**
 * The stand-in's token endpoint (`POST /oauth/token`): an RFC 8693 token exchange shaped like
 * OpenAI's workload identity federation. A workload exchanges either a JWT (an OIDC token or a
 * SPIFFE JWT-SVID, verified against a configured key set) or, with no `subject_token`, the client
 * certificate of its mTLS connection (OpenAI's X.509 flow) for a short-lived opaque access token,
 * which the stand-in then accepts instead of an API key. The RFC 7523 `jwt-bearer` grant (the JWT
 * as `assertion`, Anthropic's workload identity federation) is accepted too, at `/v1/oauth/token`
 * as Anthropic serves it or at `/oauth/token`. Form or JSON bodies. DEV ONLY.
 */
import { createHash, randomBytes, type X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import {
  createLocalJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { spiffeIdOf } from '@inference-shield/core/internal';

/** A JWT issuer whose tokens the stand-in exchanges: an OIDC IdP, or a SPIFFE trust domain. */
export interface StandinJwtIssuer {
  /** Required `iss`; omit for JWT-SVIDs without one (then `spiffeTrustDomain` is required). */
  readonly issuer?: string;
  /** Its public keys: the IdP's JWKS, or the trust domain's SPIFFE JWT bundle. */
  readonly jwks: JSONWebKeySet;
  /** The `sub` must be a SPIFFE ID of this trust domain (e.g. `shield.local`). */
  readonly spiffeTrustDomain?: string;
  /**
   * The `aud` its tokens must carry; default the endpoint's `audience`. On behalf of, a caller's
   * access token is for the service that exchanges it, not for this endpoint.
   */
  readonly audience?: string;
}

/** Options of the token endpoint (`tokenEndpoint` of `createLlmStandin`). */
export interface StandinTokenEndpointOptions {
  /** Lifetime of issued tokens in seconds; default 300, from 1 to 3600. */
  readonly tokenTtlSeconds?: number;
  /** The `aud` a subject JWT must carry (required when `jwtIssuers` is set). */
  readonly audience?: string;
  /** Issuers whose JWTs may be exchanged; none by default. */
  readonly jwtIssuers?: readonly StandinJwtIssuer[];
  /** Exchange the verified client certificate itself (OpenAI's X.509 flow); default `true`. */
  readonly acceptClientCertificate?: boolean;
}

/** Counters of the token endpoint (a test counts token requests server-side). */
export interface StandinTokenStats {
  /** Requests to the token endpoint. */
  tokenRequests: number;
  tokensIssued: number;
  /** Requests refused (bad grant, bad subject token). */
  tokenRefusals: number;
  /** Requests answered 503 while `outage` was on. */
  outageRefusals: number;
}

/** Who an issued token was given to. */
export interface StandinTokenSubject {
  /** `jwt` (a verified subject token) or `x509` (the client certificate). */
  readonly via: 'jwt' | 'x509';
  /** JWT `sub`, or the certificate's SPIFFE ID (else its subject DN). */
  readonly subject: string;
  /** On behalf of (RFC 8693 `actor_token`): the `sub` of the actor acting for `subject`. */
  readonly actor?: string;
}

/**
 * The token endpoint's path (OpenAI: `https://auth.openai.com/oauth/token`, X.509 flow on
 * `mtls.auth.openai.com`; Anthropic: `/v1/oauth/token` on the API host, also served here).
 */
export const STANDIN_TOKEN_PATH = '/oauth/token';
/** RFC 8693 §2.1. */
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 7523 §2.1 (Anthropic's workload identity federation). */
const GRANT_TYPE_JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const JWT_TYPES: ReadonlySet<string> = new Set([
  'urn:ietf:params:oauth:token-type:jwt',
  'urn:ietf:params:oauth:token-type:id_token',
  // A caller's access token, on behalf of: accepted when it is a JWT this endpoint can verify.
  'urn:ietf:params:oauth:token-type:access_token',
]);
const MAX_BODY_BYTES = 64 * 1024;
const MAX_ISSUED = 10_000;
const ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
/** Issued tokens: a recognisable prefix (secret scanners), 32 random bytes. */
const TOKEN_PREFIX = 'standin-at.';

class TokenError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}

/**
 * The token endpoint and the tokens it issued. Tokens are kept as SHA-256 digests only, bounded in
 * number and time; a presented token is checked in constant time per digest lookup.
 */
export class StandinTokenEndpoint {
  readonly stats: StandinTokenStats = {
    tokenRequests: 0,
    tokensIssued: 0,
    tokenRefusals: 0,
    outageRefusals: 0,
  };
  /** While `true`, every token request gets `503 temporarily_unavailable` (tests of a refresh failure). */
  outage = false;
  private readonly ttlSeconds: number;
  private readonly issuers: readonly {
    issuer?: string;
    keys: JWTVerifyGetKey;
    trustDomain?: string;
    audience?: string;
  }[];
  private readonly audience: string | undefined;
  private readonly acceptCertificate: boolean;
  private readonly issued = new Map<string, { expiresAt: number; subject: StandinTokenSubject }>();

  constructor(options: StandinTokenEndpointOptions) {
    const ttl = options.tokenTtlSeconds ?? 300;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 3600) {
      throw new TypeError(
        `"tokenEndpoint.tokenTtlSeconds" must be an integer from 1 to 3600, got ${String(ttl)}`,
      );
    }
    this.ttlSeconds = ttl;
    const issuers = options.jwtIssuers ?? [];
    if (!Array.isArray(issuers)) throw new TypeError('"tokenEndpoint.jwtIssuers" must be an array');
    if (issuers.length > 0 && (typeof options.audience !== 'string' || options.audience === '')) {
      throw new TypeError('"tokenEndpoint.audience" is required with "jwtIssuers"');
    }
    this.audience = options.audience;
    this.issuers = issuers.map((i, n) => {
      if (i.issuer === undefined && i.spiffeTrustDomain === undefined) {
        throw new TypeError(`"tokenEndpoint.jwtIssuers[${n}]" needs "issuer" or "spiffeTrustDomain"`);
      }
      const entry: { issuer?: string; keys: JWTVerifyGetKey; trustDomain?: string; audience?: string } = {
        keys: createLocalJWKSet(asSigningKeys(i.jwks)),
      };
      if (i.issuer !== undefined) entry.issuer = i.issuer;
      if (i.audience !== undefined) entry.audience = i.audience;
      if (i.spiffeTrustDomain !== undefined) entry.trustDomain = i.spiffeTrustDomain;
      return entry;
    });
    this.acceptCertificate = options.acceptClientCertificate ?? true;
  }

  /** True for the token endpoint's route. */
  handles(method: string | undefined, pathname: string): boolean {
    return method === 'POST' && (pathname === STANDIN_TOKEN_PATH || pathname === `/v1${STANDIN_TOKEN_PATH}`);
  }

  /** Who `token` was issued to, if it is an issued token still valid. */
  verify(token: string): StandinTokenSubject | undefined {
    if (!token.startsWith(TOKEN_PREFIX)) return undefined;
    const entry = this.issued.get(digest(token));
    if (entry === undefined) return undefined;
    if (Date.now() >= entry.expiresAt) {
      this.issued.delete(digest(token));
      return undefined;
    }
    return entry.subject;
  }

  /** Answer one token request (RFC 6749 §5: JSON, `cache-control: no-store`). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.tokenRequests++;
    try {
      if (this.outage) {
        this.stats.outageRefusals++;
        throw new TokenError(503, 'temporarily_unavailable', 'The token service is unavailable.');
      }
      const params = await readParams(req);
      const grantType = params.get('grant_type');
      const assertion = params.get('assertion');
      if (grantType !== GRANT_TYPE && grantType !== GRANT_TYPE_JWT_BEARER) {
        throw new TokenError(
          400,
          'unsupported_grant_type',
          'Only token exchange and jwt-bearer are supported.',
        );
      }
      const subjectToken = params.get('subject_token');
      let subject: StandinTokenSubject;
      if (grantType === GRANT_TYPE_JWT_BEARER) {
        if (assertion === undefined) throw new TokenError(400, 'invalid_request', 'assertion is required.');
        subject = await this.verifySubjectJwt(assertion);
      } else if (subjectToken !== undefined) {
        const type = params.get('subject_token_type');
        if (type === undefined || !JWT_TYPES.has(type)) {
          throw new TokenError(400, 'invalid_request', 'subject_token_type must be a JWT or ID token type.');
        }
        subject = await this.verifySubjectJwt(subjectToken);
        const actorToken = params.get('actor_token');
        if (actorToken !== undefined) {
          const actorType = params.get('actor_token_type');
          if (actorType === undefined || !JWT_TYPES.has(actorType)) {
            throw new TokenError(400, 'invalid_request', 'actor_token_type must be a JWT type.');
          }
          const actor = await this.verifySubjectJwt(actorToken);
          subject = { ...subject, actor: actor.subject };
        }
      } else {
        subject = this.certificateSubject(req);
      }
      const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
      this.remember(token, subject);
      this.stats.tokensIssued++;
      sendJson(res, 200, {
        access_token: token,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: this.ttlSeconds,
      });
    } catch (err) {
      const e =
        err instanceof TokenError
          ? err
          : new TokenError(500, 'server_error', 'The token service had an error.');
      if (e.status !== 503) this.stats.tokenRefusals++;
      sendJson(res, e.status, { error: e.error, error_description: e.message });
    }
  }

  private async verifySubjectJwt(token: string): Promise<StandinTokenSubject> {
    if (this.issuers.length === 0 || this.audience === undefined) {
      throw new TokenError(400, 'invalid_grant', 'No JWT issuer is trusted here.');
    }
    if (token.length > 16_384) throw new TokenError(400, 'invalid_grant', 'The subject token is too large.');
    for (const issuer of this.issuers) {
      try {
        const { payload } = await jwtVerify(token, issuer.keys, {
          audience: issuer.audience ?? this.audience,
          algorithms: ALGORITHMS,
          requiredClaims: ['exp', 'sub'],
          ...(issuer.issuer !== undefined ? { issuer: issuer.issuer } : {}),
        });
        // jose accepts an `iat` in the future: a token minted ahead of time is refused here.
        if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + 30) break;
        const sub = payload.sub as string;
        if (issuer.trustDomain !== undefined && !sub.startsWith(`spiffe://${issuer.trustDomain}/`)) continue;
        return { via: 'jwt', subject: sub };
      } catch (err) {
        // The next issuer may hold the key; any other failure refuses the token.
        if (err instanceof joseErrors.JWKSNoMatchingKey) continue;
        if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'iss') continue;
        break;
      }
    }
    throw new TokenError(400, 'invalid_grant', 'The subject token is not valid here.');
  }

  /** OpenAI's X.509 flow: the certificate verified during this connection's handshake is the subject. */
  private certificateSubject(req: IncomingMessage): StandinTokenSubject {
    if (!this.acceptCertificate) {
      throw new TokenError(400, 'invalid_request', 'subject_token is required.');
    }
    const socket = req.socket;
    const cert: X509Certificate | undefined =
      socket instanceof TLSSocket && socket.authorized ? socket.getPeerX509Certificate() : undefined;
    if (cert === undefined)
      throw new TokenError(401, 'invalid_client', 'A verified client certificate is required.');
    return { via: 'x509', subject: spiffeIdOf(cert) ?? cert.subject.replace(/\n/g, ',') };
  }

  private remember(token: string, subject: StandinTokenSubject): void {
    const now = Date.now();
    if (this.issued.size >= MAX_ISSUED) {
      for (const [k, v] of this.issued) if (v.expiresAt <= now) this.issued.delete(k);
      // Still full: drop the oldest (Map keeps insertion order).
      while (this.issued.size >= MAX_ISSUED) {
        const oldest = this.issued.keys().next().value;
        if (oldest === undefined) break;
        this.issued.delete(oldest);
      }
    }
    this.issued.set(digest(token), { expiresAt: now + this.ttlSeconds * 1000, subject });
  }
}

/**
 * A SPIFFE JWT bundle marks its keys `use: "jwt-svid"` (SPIFFE Trust Domain and Bundle §4.2.2);
 * jose only picks `use: "sig"` (or no `use`) keys for a signature.
 */
function asSigningKeys(jwks: JSONWebKeySet): JSONWebKeySet {
  return { keys: jwks.keys.map((k) => (k.use === 'jwt-svid' ? { ...k, use: 'sig' } : k)) };
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** The form (RFC 6749) or JSON (as OpenAI documents its exchange) body, bounded. */
async function readParams(req: IncomingMessage): Promise<Map<string, string>> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  const isJson = /^application\/json\b/.test(type);
  if (!isJson && !/^application\/x-www-form-urlencoded\b/.test(type)) {
    throw new TokenError(400, 'invalid_request', 'Send a form or JSON body.');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new TokenError(400, 'invalid_request', 'The request is too large.');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const out = new Map<string, string>();
  if (isJson) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new TokenError(400, 'invalid_request', 'The body is not valid JSON.');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TokenError(400, 'invalid_request', 'The body must be a JSON object.');
    }
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v !== 'string')
        throw new TokenError(400, 'invalid_request', 'Every parameter must be a string.');
      out.set(k, v);
    }
    return out;
  }
  const form = new URLSearchParams(text);
  for (const k of new Set(form.keys())) {
    // RFC 6749 §3.2: a parameter sent twice is an invalid request.
    if (form.getAll(k).length > 1) throw new TokenError(400, 'invalid_request', 'A parameter is repeated.');
    out.set(k, form.get(k) ?? '');
  }
  return out;
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const json = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
  res.end(json);
}
