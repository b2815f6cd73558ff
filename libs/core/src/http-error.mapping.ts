import { ERROR_CATALOGUE, isShieldErrorCode, type ShieldErrorCode } from './error-codes.js';
import { isShieldError } from './shield.error.js';

/** What a refusal looks like on the wire. */
export interface ShieldHttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: {
    readonly code: ShieldErrorCode;
    readonly message: string;
    readonly scope?: string;
    readonly detail?: string;
  };
}

const INVALID_TOKEN_CODES = new Set<ShieldErrorCode>([
  'ERR_TOKEN_MISSING',
  'ERR_TOKEN_MALFORMED',
  'ERR_TOKEN_TOO_LARGE',
  'ERR_TOKEN_ALG_NOT_ALLOWED',
  'ERR_TOKEN_HEADER_UNSUPPORTED',
  'ERR_TOKEN_DUPLICATE_KEY',
  'ERR_TOKEN_SIGNATURE_INVALID',
  'ERR_TOKEN_KEY_NOT_FOUND',
  'ERR_TOKEN_KEY_UNUSABLE',
  'ERR_TOKEN_EXPIRED',
  'ERR_TOKEN_NOT_YET_VALID',
  'ERR_TOKEN_ISSUED_IN_FUTURE',
  'ERR_TOKEN_ISSUER_UNKNOWN',
  'ERR_TOKEN_AUDIENCE_INVALID',
  'ERR_TOKEN_TYPE_INVALID',
  'ERR_TOKEN_CLAIM_INVALID',
  'ERR_TOKEN_BINDING_MISMATCH',
  'ERR_TOKEN_BINDING_REQUIRED',
  'ERR_TOKEN_INACTIVE',
]);

/** What every challenge of one application carries besides the error (set once at start-up). */
export interface ChallengeParams {
  /** RFC 9728 §5.1: the URL of the protected resource's metadata, on every `WWW-Authenticate` challenge. */
  readonly resourceMetadata?: string;
}

/** RFC 9449 §7.1 and §12.2: the `error` of the `DPoP` challenge for DPoP's own refusals. */
const DPOP_CHALLENGE_ERRORS: ReadonlyMap<ShieldErrorCode, string> = new Map<ShieldErrorCode, string>([
  ['ERR_DPOP_PROOF_MISSING', 'invalid_dpop_proof'],
  ['ERR_DPOP_PROOF_INVALID', 'invalid_dpop_proof'],
  ['ERR_DPOP_PROOF_REQUEST_MISMATCH', 'invalid_dpop_proof'],
  ['ERR_DPOP_PROOF_EXPIRED', 'invalid_dpop_proof'],
  ['ERR_DPOP_PROOF_REPLAYED', 'invalid_dpop_proof'],
  ['ERR_DPOP_BINDING_MISMATCH', 'invalid_dpop_proof'],
  ['ERR_DPOP_NONCE_REQUIRED', 'use_dpop_nonce'],
  ['ERR_DPOP_TOKEN_AS_BEARER', 'invalid_token'],
  ['ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED', 'invalid_token'],
]);

/** Status codes of Nest/Express/body-parser errors that we translate into our own codes. */
const STATUS_TO_CODE: ReadonlyMap<number, ShieldErrorCode> = new Map([
  [400, 'ERR_BAD_REQUEST'],
  [404, 'ERR_NOT_FOUND'],
  [405, 'ERR_METHOD_NOT_ALLOWED'],
  [408, 'ERR_REQUEST_TIMEOUT'],
  [413, 'ERR_BODY_TOO_LARGE'],
  [415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
  [431, 'ERR_HEADERS_TOO_LARGE'],
]);

function quote(value: string): string {
  // RFC 6750 §3: auth-param values are quoted-strings; our values never hold quotes or backslashes,
  // but strip them anyway so a scope name can never break the header.
  return value.replace(/["\\\r\n]/g, '');
}

/**
 * The one place that turns an error into an HTTP refusal: status, headers, body.
 * The body carries the code and the catalogue's short reason, never `error.message` of a library
 * error, never a credential. Unknown errors become `ERR_INTERNAL` (500): a bug, not an input.
 */
export function toHttpResponse(err: unknown, challenge?: ChallengeParams): ShieldHttpResponse {
  const code = codeOf(err);
  const entry = ERROR_CATALOGUE[code];
  const headers: Record<string, string> = {};
  const scope = isShieldError(err) ? err.details.scope : undefined;
  if (INVALID_TOKEN_CODES.has(code)) {
    // RFC 6750 §3.1: a request without credentials gets a bare challenge, a bad token gets invalid_token.
    headers['WWW-Authenticate'] =
      code === 'ERR_TOKEN_MISSING' ? 'Bearer' : `Bearer error="invalid_token", error_description="${code}"`;
  } else if (code === 'ERR_INSUFFICIENT_SCOPE') {
    headers['WWW-Authenticate'] =
      `Bearer error="insufficient_scope"` + (scope ? `, scope="${quote(scope)}"` : '');
  } else if (entry.status === 401) {
    headers['WWW-Authenticate'] = 'Bearer';
  }
  const resourceMetadata = challenge?.resourceMetadata;
  const www = headers['WWW-Authenticate'];
  if (resourceMetadata !== undefined && www !== undefined) {
    // RFC 9728 §5.1: lets a client find the authorization servers from any 401.
    const param = `resource_metadata="${quote(resourceMetadata)}"`;
    headers['WWW-Authenticate'] = www.includes(' ') ? `${www}, ${param}` : `${www} ${param}`;
  }
  const dpop = isShieldError(err) ? err.details.dpop : undefined;
  if (dpop !== undefined && entry.status === 401) {
    // RFC 9449 §7.1: a `DPoP` challenge beside the Bearer one, with the error when it is DPoP's.
    const error = DPOP_CHALLENGE_ERRORS.get(code);
    const dpopChallenge =
      (error ? `DPoP error="${error}", error_description="${code}", ` : 'DPoP ') +
      `algs="${quote(dpop.algs)}"` +
      // RFC 9728 §5.1: on the DPoP challenge too.
      (resourceMetadata !== undefined ? `, resource_metadata="${quote(resourceMetadata)}"` : '');
    const bearer = headers['WWW-Authenticate'];
    headers['WWW-Authenticate'] = bearer === undefined ? dpopChallenge : `${bearer}, ${dpopChallenge}`;
    // RFC 9449 §8/§9: the nonce the next proof must carry.
    if (dpop.nonce !== undefined) headers['DPoP-Nonce'] = dpop.nonce;
  }
  const body: { code: ShieldErrorCode; message: string; scope?: string; detail?: string } = {
    code,
    message: entry.reason,
  };
  if (scope !== undefined) body.scope = scope;
  // Only codes flagged in the catalogue send their detail: it names a field, never a value.
  if ('exposeDetail' in entry && isShieldError(err) && err.details.detail !== undefined) {
    body.detail = err.details.detail.slice(0, 200);
  }
  return { status: entry.status, headers, body };
}

/** The catalogue code for any error: a ShieldError's own, a known HTTP status's, else ERR_INTERNAL. */
export function codeOf(err: unknown): ShieldErrorCode {
  if (isShieldError(err) && isShieldErrorCode(err.code)) return err.code;
  const status = statusOf(err);
  return (status !== undefined && STATUS_TO_CODE.get(status)) || 'ERR_INTERNAL';
}

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { getStatus?: () => unknown; status?: unknown; statusCode?: unknown };
  const s = typeof e.getStatus === 'function' ? e.getStatus() : (e.statusCode ?? e.status);
  return typeof s === 'number' ? s : undefined;
}
