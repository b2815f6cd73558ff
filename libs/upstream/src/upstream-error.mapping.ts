import type { TLSSocket } from 'node:tls';
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

/**
 * TLS alerts (RFC 8446 §6.2) by which a server refuses the client certificate, by OpenSSL's alert
 * name. `handshake_failure` is not one: it also ends a handshake with no common cipher or group.
 */
const CLIENT_CERT_ALERTS: Readonly<Record<string, string>> = {
  CERTIFICATE_REQUIRED: 'certificate required', // 116, TLS 1.3: no certificate sent
  BAD_CERTIFICATE: 'bad certificate', // 42
  UNSUPPORTED_CERTIFICATE: 'unsupported certificate', // 43
  CERTIFICATE_REVOKED: 'certificate revoked', // 44
  CERTIFICATE_EXPIRED: 'certificate expired', // 45
  CERTIFICATE_UNKNOWN: 'certificate unknown', // 46
  UNKNOWN_CA: 'unknown ca', // 48
  ACCESS_DENIED: 'access denied', // 49: a valid certificate the server's policy refuses
};

/**
 * An alert received from the peer, as Node spells OpenSSL's reason: `ERR_SSL_SSLV3_ALERT_*`,
 * `ERR_SSL_TLSV1_ALERT_*`, `ERR_SSL_TLSV13_ALERT_*` (OpenSSL 3.0, Node 20), and
 * `ERR_SSL_SSL/TLS_ALERT_*` (OpenSSL 3.2+, Node 24 and 26, which renamed the "sslv3 alert" reasons).
 * On the client these are alerts the server sent: our own verification of the server reports
 * X509 codes (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, ...), not alerts.
 */
const RECEIVED_ALERT = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13|SSL\/TLS)_ALERT_([A-Z_]+)$/;

/** The name of the client-certificate alert a code reports, or undefined. */
export function clientCertAlertOf(code: unknown): string | undefined {
  if (typeof code !== 'string') return undefined;
  const m = RECEIVED_ALERT.exec(code);
  return m?.[1] !== undefined ? CLIENT_CERT_ALERTS[m[1]] : undefined;
}

/**
 * TLS 1.3 sends the server's verdict on our certificate after our side of the handshake is done,
 * so it arrives on the first read: the socket errors with the alert, then ends, and undici replaces
 * the alert with its own `SocketError: other side closed` (undici 7). To keep the alert, each TLS
 * connection our own connector hands undici is watched ({@link watchClientCertAlert}: one `error`
 * listener), and an alert refusing our certificate is remembered by the connection's ports until
 * the error that follows is mapped. Only our connections: the host app's other undici clients are
 * not touched. Observing only: nothing about the connection changes. Bounded: 256 entries, 30 s each.
 */
const LOST_ALERT_TTL_MS = 30_000;
const MAX_LOST_ALERTS = 256;
const lostAlerts = new Map<string, { readonly code: string; readonly at: number }>();

function connectionKey(info: {
  localAddress?: unknown;
  localPort?: unknown;
  remoteAddress?: unknown;
  remotePort?: unknown;
}): string | undefined {
  const { localAddress, localPort, remoteAddress, remotePort } = info;
  if (typeof localPort !== 'number' || typeof remotePort !== 'number') return undefined;
  return `${String(localAddress)}|${localPort}|${String(remoteAddress)}|${remotePort}`;
}

function rememberAlert(key: string, code: string): void {
  const now = Date.now();
  for (const [k, v] of lostAlerts) {
    if (lostAlerts.size < MAX_LOST_ALERTS && now - v.at < LOST_ALERT_TTL_MS) break;
    lostAlerts.delete(k);
  }
  lostAlerts.set(key, { code, at: now });
}

/** Called by our connector for each verified TLS connection it hands undici. */
export function watchClientCertAlert(socket: TLSSocket): void {
  const key = connectionKey(socket);
  if (key === undefined) return;
  socket.prependOnceListener('error', (err: unknown) => {
    const code = (err as { code?: unknown }).code;
    if (clientCertAlertOf(code) !== undefined) rememberAlert(key, code as string);
  });
}

/** The alert undici dropped for the connection a `SocketError` names, taken out of the store. */
function lostAlertOf(err: object): string | undefined {
  const info = (err as { socket?: unknown }).socket;
  if (typeof info !== 'object' || info === null) return undefined;
  const key = connectionKey(info);
  if (key === undefined) return undefined;
  const found = lostAlerts.get(key);
  if (found === undefined) return undefined;
  lostAlerts.delete(key);
  return Date.now() - found.at < LOST_ALERT_TTL_MS ? found.code : undefined;
}

/** Causes are followed this deep at most (a cause cycle must not hang us). */
const MAX_CAUSE_DEPTH = 8;

/** The client-certificate alert one library error reports (its own, or the one undici dropped). */
function refusalOf(err: unknown): { code: string; alert: string } | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  let code = (err as { code?: unknown }).code;
  if (code === 'UND_ERR_SOCKET') code = lostAlertOf(err) ?? code;
  const alert = clientCertAlertOf(code);
  return alert !== undefined ? { code: code as string, alert } : undefined;
}

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
    const refused = refusalOf(current);
    if (refused !== undefined) {
      // The alert names what the upstream disliked: for the log (`detail`, the message), never
      // for the body, which the catalogue's reason alone makes.
      return new ShieldError('ERR_UPSTREAM_CLIENT_CERT_REFUSED', {
        cause: err,
        detail: `TLS alert "${refused.alert}" (${refused.code})`,
        message: `The upstream refused our client certificate: TLS alert "${refused.alert}".`,
      });
    }
    const code = codeOfOne(current);
    if (code !== undefined) return new ShieldError(code, { cause: err });
    current = (current as { cause?: unknown }).cause;
  }
  // A failure we cannot classify is still an upstream failure, never a 500 of ours.
  return new ShieldError('ERR_UPSTREAM_CONNECT', { cause: err });
}
