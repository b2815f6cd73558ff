import { codeOf, ERROR_CATALOGUE, type ShieldErrorCode } from '@inference-shield/core/internal';

/** RFC 6749 §5.2 error codes the token endpoint uses. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'unsupported_grant_type'
  | 'temporarily_unavailable'
  | 'server_error';

/** A token endpoint refusal on the wire. */
export interface OAuthErrorResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: {
    readonly error: OAuthErrorCode;
    /** The catalogue's short reason (never a library message, never the assertion). */
    readonly error_description: string;
    /** Our catalogue code, as in every other refusal. */
    readonly code: ShieldErrorCode;
  };
}

const INVALID_REQUEST = new Set<ShieldErrorCode>([
  'ERR_SAML_GRANT_INVALID',
  'ERR_BAD_REQUEST',
  'ERR_UNSUPPORTED_MEDIA_TYPE',
  'ERR_BODY_TOO_LARGE',
]);

/**
 * The token endpoint's one mapping decision, and the only place status differs from the catalogue:
 * RFC 7522 §3.1 says an assertion that is not valid MUST be answered with the RFC 6749 §5.2
 * `invalid_grant` error, which §5.2 sends with status 400. So every `ERR_SAML_*` refusal there is
 * `400 {"error":"invalid_grant"}`, while the same code is a 401 at the ACS. The catalogue code
 * stays in the body (`code`), so clients and logs still see which check refused.
 */
export function toOAuthErrorResponse(err: unknown): OAuthErrorResponse {
  const code = codeOf(err);
  let error: OAuthErrorCode;
  let status = 400;
  if (code === 'ERR_SAML_GRANT_TYPE_UNSUPPORTED') error = 'unsupported_grant_type';
  else if (code === 'ERR_SAML_SCOPE_INVALID') error = 'invalid_scope';
  else if (INVALID_REQUEST.has(code)) error = 'invalid_request';
  else if (code.startsWith('ERR_SAML_')) error = 'invalid_grant';
  else if (code === 'ERR_NOT_READY') {
    error = 'temporarily_unavailable';
    status = 503;
  } else {
    error = 'server_error';
    status = ERROR_CATALOGUE[code].status >= 500 ? ERROR_CATALOGUE[code].status : 500;
  }
  return {
    status,
    // RFC 6749 §5.1/§5.2: token responses are never cached.
    headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
    body: { error, error_description: ERROR_CATALOGUE[code].reason, code },
  };
}
