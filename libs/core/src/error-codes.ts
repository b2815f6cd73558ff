/**
 * The one catalogue of Inference Shield error codes: each code, its HTTP status, and the short
 * reason a client may see. Nothing else in the project decides a status for a refusal.
 *
 * To add a code: add one row here (keep the groups), then throw `new ShieldError('ERR_...')`.
 */
export const ERROR_CATALOGUE = {
  // Generic request problems
  ERR_BAD_REQUEST: { status: 400, reason: 'The request is malformed.' },
  ERR_HTTP_TO_HTTPS: { status: 400, reason: 'This port speaks HTTPS only. Use https://.' },
  ERR_NOT_FOUND: { status: 404, reason: 'No such route.' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, reason: 'Method not allowed on this route.' },
  ERR_REQUEST_TIMEOUT: { status: 408, reason: 'The request took too long to arrive.' },
  ERR_BODY_TOO_LARGE: { status: 413, reason: 'The request body is too large.' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, reason: 'Unsupported content type.' },
  ERR_HEADERS_TOO_LARGE: { status: 431, reason: 'The request headers are too large.' },
  ERR_INTERNAL: { status: 500, reason: 'Internal error.' },
  ERR_NOT_READY: { status: 503, reason: 'The service is not ready.' },
  ERR_SHUTTING_DOWN: { status: 503, reason: 'The server is shutting down. Retry on a new connection.' },

  // Access tokens (RFC 6750 / RFC 9068 / RFC 8705)
  ERR_TOKEN_MISSING: { status: 401, reason: 'An access token is required in the Authorization header.' },
  ERR_TOKEN_MALFORMED: { status: 401, reason: 'The access token is malformed.' },
  ERR_TOKEN_TOO_LARGE: { status: 401, reason: 'The access token is too large.' },
  ERR_TOKEN_ALG_NOT_ALLOWED: { status: 401, reason: 'The token signing algorithm is not allowed.' },
  ERR_TOKEN_HEADER_UNSUPPORTED: { status: 401, reason: 'The token header uses an unsupported parameter.' },
  ERR_TOKEN_DUPLICATE_KEY: { status: 401, reason: 'The token has duplicate JSON members.' },
  ERR_TOKEN_SIGNATURE_INVALID: { status: 401, reason: 'The token signature is invalid.' },
  ERR_TOKEN_KEY_NOT_FOUND: { status: 401, reason: 'No key of the issuer matches the token.' },
  ERR_TOKEN_KEY_UNUSABLE: { status: 401, reason: 'The key for this token is not acceptable.' },
  ERR_TOKEN_EXPIRED: { status: 401, reason: 'The token has expired.' },
  ERR_TOKEN_NOT_YET_VALID: { status: 401, reason: 'The token is not yet valid.' },
  ERR_TOKEN_ISSUED_IN_FUTURE: { status: 401, reason: 'The token was issued in the future.' },
  ERR_TOKEN_ISSUER_UNKNOWN: { status: 401, reason: 'The token issuer is not trusted.' },
  ERR_TOKEN_AUDIENCE_INVALID: { status: 401, reason: 'The token is not meant for this service.' },
  ERR_TOKEN_TYPE_INVALID: { status: 401, reason: 'The token type is not acceptable.' },
  ERR_TOKEN_CLAIM_INVALID: { status: 401, reason: 'A required token claim is missing or invalid.' },
  ERR_TOKEN_BINDING_MISMATCH: { status: 401, reason: 'The token is bound to another client certificate.' },
  ERR_TOKEN_BINDING_REQUIRED: { status: 401, reason: 'This route requires a certificate-bound token.' },
  ERR_KEYSET_UNAVAILABLE: { status: 503, reason: 'The issuer keys are not available yet.' },

  // DPoP (RFC 9449)
  // Access tokens bound to a client key (`cnf.jkt`): each request carries a proof signed by it.
  ERR_DPOP_PROOF_MISSING: { status: 401, reason: 'This access token needs a DPoP proof.' },
  ERR_DPOP_PROOF_INVALID: { status: 401, reason: 'The DPoP proof is invalid.' },
  ERR_DPOP_PROOF_REQUEST_MISMATCH: { status: 401, reason: 'The DPoP proof was made for another request.' },
  ERR_DPOP_PROOF_EXPIRED: { status: 401, reason: 'The DPoP proof is too old or issued in the future.' },
  ERR_DPOP_PROOF_REPLAYED: { status: 401, reason: 'This DPoP proof was already used.' },
  ERR_DPOP_BINDING_MISMATCH: { status: 401, reason: 'The DPoP proof does not match the access token.' },
  ERR_DPOP_NONCE_REQUIRED: { status: 401, reason: 'The DPoP proof must carry the current server nonce.' },
  ERR_DPOP_TOKEN_AS_BEARER: {
    status: 401,
    reason: 'This access token is DPoP-bound: send it with the DPoP scheme.',
  },
  ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED: {
    status: 401,
    reason: 'This route requires a sender-constrained token (DPoP or certificate-bound).',
  },
  ERR_DPOP_REPLAY_STORE_UNAVAILABLE: {
    status: 503,
    reason: 'DPoP proofs cannot be checked right now; try again later.',
  },

  // Callers and policy
  ERR_CLIENT_CERT_MISSING: { status: 401, reason: 'A verified client certificate is required.' },
  ERR_CLIENT_CERT_INVALID: { status: 401, reason: 'The client certificate is not acceptable.' },
  ERR_AUTH_METHOD_NOT_ALLOWED: { status: 401, reason: 'This authentication method is not accepted here.' },
  ERR_UNSUPPORTED_CONTEXT: { status: 401, reason: 'This transport is not supported.' },
  ERR_INSUFFICIENT_SCOPE: { status: 403, reason: 'The token lacks a required scope.' },
  ERR_CALLER_NOT_ALLOWED: { status: 403, reason: 'This caller is not allowed on this route.' },
  ERR_CLAIMS_NOT_SATISFIED: { status: 403, reason: 'The caller does not meet this route policy.' },
  ERR_USER_UNKNOWN: { status: 403, reason: 'The caller is not a user of this service.' },
  ERR_USER_RESOLUTION_FAILED: { status: 503, reason: 'The caller could not be looked up; try again later.' },

  // SAML
  ERR_SAML_MALFORMED: { status: 401, reason: 'The SAML message is malformed.' },
  ERR_SAML_TOO_LARGE: { status: 413, reason: 'The SAML message is too large.' },
  ERR_SAML_DOCTYPE_FORBIDDEN: { status: 401, reason: 'SAML messages must not carry a DOCTYPE.' },
  ERR_SAML_STRUCTURE_INVALID: { status: 401, reason: 'The SAML message structure is not acceptable.' },
  ERR_SAML_SIGNATURE_INVALID: { status: 401, reason: 'The SAML signature is invalid.' },
  ERR_SAML_STATUS_NOT_SUCCESS: { status: 401, reason: 'The SAML response status is not Success.' },
  ERR_SAML_ISSUER_INVALID: { status: 401, reason: 'The SAML issuer is not trusted.' },
  ERR_SAML_DESTINATION_INVALID: { status: 401, reason: 'The SAML response is meant for another endpoint.' },
  ERR_SAML_RECIPIENT_INVALID: { status: 401, reason: 'The SAML assertion is meant for another endpoint.' },
  ERR_SAML_AUDIENCE_INVALID: { status: 401, reason: 'The SAML assertion is meant for another audience.' },
  ERR_SAML_CONDITIONS_INVALID: { status: 401, reason: 'The SAML assertion is expired or not yet valid.' },
  ERR_SAML_IN_RESPONSE_TO_INVALID: { status: 401, reason: 'The SAML response answers no request of ours.' },
  ERR_SAML_REPLAY: { status: 401, reason: 'This SAML assertion was already used.' },
  ERR_SAML_GRANT_INVALID: { status: 400, reason: 'The grant request is malformed.' },
  ERR_SAML_GRANT_TYPE_UNSUPPORTED: { status: 400, reason: 'This grant type is not supported here.' },
  ERR_SAML_SCOPE_INVALID: { status: 400, reason: 'The requested scope exceeds what the assertion grants.' },

  // Model serving
  // `exposeDetail`: the error's `detail` names the offending field (never its value) and is sent.
  ERR_INVALID_INPUT: { status: 400, reason: 'The inference input is invalid.', exposeDetail: true },
  ERR_MODEL_NOT_FOUND: { status: 404, reason: 'No such model.' },
  ERR_MODEL_NOT_READY: { status: 503, reason: 'The model is not ready.' },

  // Upstream calls (our outbound client and proxy)
  ERR_UPSTREAM_ORIGIN_MISMATCH: {
    status: 502,
    reason: 'The request targets another origin than its upstream.',
  },
  ERR_UPSTREAM_CERT_UNTRUSTED: { status: 502, reason: 'The upstream certificate is not trusted.' },
  ERR_UPSTREAM_CERT_EXPIRED: { status: 502, reason: 'The upstream certificate is expired or not yet valid.' },
  ERR_UPSTREAM_HOSTNAME_MISMATCH: { status: 502, reason: 'The upstream certificate is for another host.' },
  ERR_UPSTREAM_PIN_MISMATCH: { status: 502, reason: 'The upstream key does not match its pin.' },
  ERR_UPSTREAM_TLS_VERSION: { status: 502, reason: 'The upstream does not offer an acceptable TLS version.' },
  ERR_UPSTREAM_TLS: { status: 502, reason: 'The TLS connection to the upstream failed.' },
  ERR_UPSTREAM_CLIENT_CERT_REFUSED: {
    status: 502,
    reason: 'The upstream refused our client certificate.',
  },
  ERR_UPSTREAM_CONNECT: { status: 502, reason: 'The upstream could not be reached.' },
  ERR_UPSTREAM_REDIRECT: {
    status: 502,
    reason: 'The upstream answered with a redirect, which is not followed.',
  },
  ERR_UPSTREAM_BAD_RESPONSE: { status: 502, reason: 'The upstream answered with an error.' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, reason: 'The upstream did not answer in time.' },
  ERR_UPSTREAM_ABORTED: { status: 499, reason: 'The request was cancelled.' },

  // Upstream credentials (keyless calls: tokens obtained from a token endpoint, never logged)
  ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE: {
    status: 503,
    reason: 'No credential for the upstream could be obtained; try again later.',
  },
  ERR_UPSTREAM_CREDENTIAL_REFUSED: {
    status: 503,
    reason: 'The token endpoint refused this service; try again later.',
  },

  // LLM relay
  // Answered in OpenAI's shape on the relay's routes, the code in `error.code`. A forbidden model is
  // answered ERR_LLM_MODEL_NOT_FOUND (names never leak); ERR_LLM_MODEL_FORBIDDEN is for the audit.
  // ERR_LLM_UPSTREAM_REFUSED (logs, usage events): the upstream's 4xx, passed on with its status.
  ERR_LLM_INVALID_REQUEST: { status: 400, reason: 'The request is invalid.', exposeDetail: true },
  ERR_LLM_MODEL_NOT_FOUND: {
    status: 404,
    reason: 'The model does not exist or you do not have access to it.',
  },
  ERR_LLM_MODEL_FORBIDDEN: {
    status: 404,
    reason: 'The model does not exist or you do not have access to it.',
  },
  ERR_LLM_REQUESTS_EXCEEDED: { status: 429, reason: 'Rate limit reached for requests.' },
  ERR_LLM_TOKENS_EXCEEDED: { status: 429, reason: 'Rate limit reached for tokens.' },
  ERR_LLM_UPSTREAM_REFUSED: { status: 400, reason: 'The upstream model server refused the request.' },
  ERR_BUDGET_STORE_UNAVAILABLE: {
    status: 503,
    reason: 'The budget store is unavailable; try again later.',
  },

  // OAuth 2.0 token introspection, RFC 7662 (opaque access tokens; identity `introspection`)
  ERR_TOKEN_INACTIVE: { status: 401, reason: 'The token is not active.' },
  ERR_INTROSPECTION_UNAVAILABLE: {
    status: 503,
    reason: 'The token cannot be checked now: the authorization server did not answer.',
  },

  // SPIFFE Workload API (start-up failures are thrown; a source that is not ready answers 503)
  ERR_SPIFFE_AGENT_UNAVAILABLE: {
    status: 503,
    reason: 'The SPIFFE Workload API agent did not answer in time.',
  },
  ERR_SPIFFE_SVID_INVALID: { status: 503, reason: 'The SPIFFE Workload API agent sent invalid material.' },
  ERR_SPIFFE_NOT_READY: { status: 503, reason: 'The workload identity is not available.' },
  ERR_SPIFFE_JWT_SVID_UNAVAILABLE: {
    status: 503,
    reason: 'No JWT-SVID could be obtained for this audience.',
  },

  // Start-up and rotation (never sent to clients: they stop the app or are reported)
  ERR_CERT_FILE_UNREADABLE: { status: 500, reason: 'A certificate file is missing or unreadable.' },
  ERR_CERT_INVALID: { status: 500, reason: 'A certificate file does not hold a valid certificate.' },
  ERR_CERT_KEY_INVALID: { status: 500, reason: 'A private key file does not hold a valid key.' },
  ERR_CERT_KEY_MISMATCH: { status: 500, reason: 'The private key does not match the certificate.' },
  ERR_CERT_EXPIRED: { status: 500, reason: 'The certificate has expired.' },
  ERR_CERT_NOT_YET_VALID: { status: 500, reason: 'The certificate is not yet valid.' },
  ERR_CERT_USAGE: { status: 500, reason: 'The certificate is not allowed for this use.' },
  ERR_CERT_CRL_INVALID: { status: 500, reason: 'The CRL file is not valid.' },
} as const satisfies Record<string, { status: number; reason: string; exposeDetail?: true }>;

/** A stable Inference Shield error code: code can `switch (err.code)` on it. */
export type ShieldErrorCode = keyof typeof ERROR_CATALOGUE;

/** True when `value` is a code of the catalogue. */
export function isShieldErrorCode(value: unknown): value is ShieldErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOGUE, value);
}
