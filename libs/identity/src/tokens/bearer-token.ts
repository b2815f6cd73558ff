import { ShieldError } from '@inference-shield/core/internal';

/** RFC 6750 §2.1: `Bearer` (any case, RFC 7235 §2.1), one or more spaces, a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
// The scheme alone: `Bearer` then a space, a tab or nothing. RFC 9110 §11.4 puts spaces only
// after the scheme, but a tab there still names the Bearer scheme: such a header is a broken
// bearer credential (refused as malformed), never a header without one.
const SCHEME = /^Bearer(?:[ \t]|$)/i;

/**
 * Takes the access token from an `Authorization` header value, the only place we read it
 * (never the query string, never a cookie: RFC 6750 §2.2/§2.3 are not supported). The length is
 * checked before the regular expression runs.
 *
 * Throws `ERR_TOKEN_MISSING` without a Bearer credential, `ERR_TOKEN_MALFORMED` for a broken or
 * repeated header, `ERR_TOKEN_TOO_LARGE` beyond `maxTokenBytes`.
 *
 * @example
 * const token = extractBearerToken(req.headers.authorization, options.maxTokenBytes);
 */
export function extractBearerToken(
  authorizationHeader: string | string[] | undefined,
  maxTokenBytes: number,
): string {
  if (authorizationHeader === undefined || authorizationHeader === '')
    throw new ShieldError('ERR_TOKEN_MISSING');
  // Several Authorization headers: which one would be "the" credential is ambiguous.
  if (typeof authorizationHeader !== 'string') throw new ShieldError('ERR_TOKEN_MALFORMED');
  // "Bearer " plus some spaces of slack; anything longer cannot hold an acceptable token.
  if (authorizationHeader.length > maxTokenBytes + 32) {
    if (!SCHEME.test(authorizationHeader.slice(0, 7))) throw new ShieldError('ERR_TOKEN_MISSING');
    throw new ShieldError('ERR_TOKEN_TOO_LARGE');
  }
  // Another scheme (Basic, DPoP...) is no bearer credential (RFC 6750 §3.1: no error code).
  if (!SCHEME.test(authorizationHeader)) throw new ShieldError('ERR_TOKEN_MISSING');
  const match = BEARER.exec(authorizationHeader);
  const token = match?.[1];
  if (token === undefined) throw new ShieldError('ERR_TOKEN_MALFORMED');
  if (token.length > maxTokenBytes) throw new ShieldError('ERR_TOKEN_TOO_LARGE');
  return token;
}

/** RFC 9449 §7.1: `DPoP` (any case), one or more spaces, the access token as a token68. */
const DPOP = /^DPoP +([A-Za-z0-9\-._~+/]+=*) *$/i;
const DPOP_SCHEME = /^DPoP(?:[ \t]|$)/i;

/** How an access token was presented: RFC 6750 `Bearer`, or RFC 9449 `DPoP` (a proof must follow). */
export type AuthorizationScheme = 'Bearer' | 'DPoP';

/** The scheme of an `Authorization` header value when it is `Bearer` or `DPoP`; cheap, no token parsing. */
export function authorizationSchemeOf(header: string): AuthorizationScheme | undefined {
  if (SCHEME.test(header.slice(0, 7))) return 'Bearer';
  if (DPOP_SCHEME.test(header.slice(0, 5))) return 'DPoP';
  return undefined;
}

/**
 * Takes the access token from an `Authorization` header presenting it as `Bearer` (RFC 6750) or
 * as `DPoP` (RFC 9449 §7.1, for a DPoP-bound token; the proof is checked by the caller). The same
 * bounds and codes as {@link extractBearerToken}; another scheme is `ERR_TOKEN_MISSING`.
 *
 * @example
 * const { scheme, token } = extractAccessToken(req.headers.authorization, 8192);
 */
export function extractAccessToken(
  authorizationHeader: string | string[] | undefined,
  maxTokenBytes: number,
): { readonly scheme: AuthorizationScheme; readonly token: string } {
  if (typeof authorizationHeader !== 'string' || !DPOP_SCHEME.test(authorizationHeader.slice(0, 5))) {
    return { scheme: 'Bearer', token: extractBearerToken(authorizationHeader, maxTokenBytes) };
  }
  // "DPoP " plus some spaces of slack; anything longer cannot hold an acceptable token.
  if (authorizationHeader.length > maxTokenBytes + 32) throw new ShieldError('ERR_TOKEN_TOO_LARGE');
  const token = DPOP.exec(authorizationHeader)?.[1];
  if (token === undefined) throw new ShieldError('ERR_TOKEN_MALFORMED');
  if (token.length > maxTokenBytes) throw new ShieldError('ERR_TOKEN_TOO_LARGE');
  return { scheme: 'DPoP', token };
}

const AUTHORIZATION = /^authorization$/i;
const DPOP_HEADER = /^dpop$/i;

/**
 * Whether the request carried the `DPoP` header more than once (RFC 9449 §4.3 step 1: exactly
 * one proof). Node would join repeated unknown headers with `, `; `rawHeaders` keeps them apart.
 */
export function repeatsDpopHeader(rawHeaders: readonly unknown[] | undefined): boolean {
  if (!Array.isArray(rawHeaders)) return false;
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name: unknown = rawHeaders[i];
    if (typeof name === 'string' && name.length === 4 && DPOP_HEADER.test(name)) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/**
 * Whether the request carried `Authorization` more than once. Node's HTTP parser keeps the first
 * and silently drops the others from `req.headers` (only `rawHeaders` keeps them all), so
 * {@link extractBearerToken} never sees the repeat. A proxy or logging tier that reads the last
 * one would see another caller than the one we authorize: RFC 9110 §5.3 forbids repeating a
 * field that is not a list, and an ambiguous credential is refused, never guessed.
 *
 * @example
 * if (repeatsAuthorization(req.rawHeaders)) throw new ShieldError('ERR_TOKEN_MALFORMED');
 */
export function repeatsAuthorization(rawHeaders: readonly unknown[] | undefined): boolean {
  if (!Array.isArray(rawHeaders)) return false;
  let seen = false;
  // Names at even indexes; bounded by the parser's own header count and size limits.
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name: unknown = rawHeaders[i];
    if (typeof name === 'string' && name.length === 13 && AUTHORIZATION.test(name)) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** The raw header list under an Express (`req`) or Fastify (`req.raw`) request. */
export function rawHeadersOf(request: object): readonly unknown[] | undefined {
  const r = request as { rawHeaders?: unknown; raw?: { rawHeaders?: unknown } };
  // Express first: an own property there, while a miss on `raw` walks the request's prototype chain.
  const own = r.rawHeaders;
  if (Array.isArray(own)) return own;
  const raw = r.raw?.rawHeaders;
  return Array.isArray(raw) ? raw : undefined;
}
