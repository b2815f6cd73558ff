import { isShieldError, ShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';

// OpenSSL verification results (X509_V_ERR_*, as Node names them) for a chain we cannot trust.
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'CERT_REVOKED',
  'CERT_CHAIN_TOO_LONG',
  'ERR_TLS_CERT_SIGNATURE_ALGORITHM_UNSUPPORTED',
  'EE_KEY_TOO_SMALL',
  'CA_KEY_TOO_SMALL',
  'CA_MD_TOO_WEAK',
]);
const EXPIRED = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
]);
// OpenSSL errors of a failed version negotiation, seen from the client.
const TLS_VERSION = new Set([
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_VERSION_TOO_LOW',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY',
]);
const CONNECT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'EPIPE',
  'ECONNRESET',
]);
const TIMEOUT = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
]);
const BAD_RESPONSE = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'UND_ERR_HEADERS_OVERFLOW',
  'HPE_INVALID_CONSTANT',
  'HPE_INVALID_HEADER_TOKEN',
  'HPE_INVALID_VERSION',
  'HPE_INVALID_STATUS',
  'HPE_HEADER_OVERFLOW',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_INVALID_TRANSFER_ENCODING',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
const ABORTED = new Set(['UND_ERR_ABORTED', 'ABORT_ERR', 'UND_ERR_DESTROYED', 'UND_ERR_CLOSED']);

/** Causes are followed this deep at most (a cause cycle must not hang us). */
const MAX_CAUSE_DEPTH = 8;

/** The catalogue code of one library error, or undefined when it says nothing we know. */
function codeOfOne(err: unknown): ShieldErrorCode | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  if (isShieldError(err)) return err.code;
  const name = (err as { name?: unknown }).name;
  if (name === 'AbortError') return 'ERR_UPSTREAM_ABORTED';
  // undici's llhttp errors do not always carry an HPE_* code.
  if (name === 'HTTPParserError') return 'ERR_UPSTREAM_BAD_RESPONSE';
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  if (EXPIRED.has(code)) return 'ERR_UPSTREAM_CERT_EXPIRED';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH')
    return 'ERR_UPSTREAM_HOSTNAME_MISMATCH';
  if (UNTRUSTED.has(code)) return 'ERR_UPSTREAM_CERT_UNTRUSTED';
  if (TLS_VERSION.has(code)) return 'ERR_UPSTREAM_TLS_VERSION';
  if (TIMEOUT.has(code)) return 'ERR_UPSTREAM_TIMEOUT';
  if (CONNECT.has(code)) return 'ERR_UPSTREAM_CONNECT';
  if (BAD_RESPONSE.has(code)) return 'ERR_UPSTREAM_BAD_RESPONSE';
  if (ABORTED.has(code)) return 'ERR_UPSTREAM_ABORTED';
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'ERR_UPSTREAM_TLS';
  return undefined;
}

/**
 * Turn whatever undici, Node's TLS layer or a socket threw into a typed refusal. The most specific
 * error of the cause chain wins (`fetch failed` → `ConnectTimeoutError` → ...). The original is
 * kept as `cause` for logs; its message (which may quote a URL) never reaches a client.
 */
export function toUpstreamError(err: unknown): ShieldError {
  let current: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== undefined && current !== null; depth++) {
    if (isShieldError(current) && current.code.startsWith('ERR_UPSTREAM_')) return current;
    const code = codeOfOne(current);
    if (code !== undefined) return new ShieldError(code, { cause: err });
    current = (current as { cause?: unknown }).cause;
  }
  // A failure we cannot classify is still an upstream failure, never a 500 of ours.
  return new ShieldError('ERR_UPSTREAM_CONNECT', { cause: err });
}
