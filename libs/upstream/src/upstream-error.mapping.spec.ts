import { describe, expect, it } from 'vitest';
import { ShieldError, toHttpResponse } from '@inference-shield/core/internal';
import { clientCertAlertOf, toUpstreamError } from './upstream-error.mapping.js';

function err(code: string, name = 'Error'): Error {
  return Object.assign(new Error('library message quoting https://host/path?key=secret'), { code, name });
}

describe('toUpstreamError', () => {
  it.each([
    ['CERT_HAS_EXPIRED', 'ERR_UPSTREAM_CERT_EXPIRED'],
    ['CERT_NOT_YET_VALID', 'ERR_UPSTREAM_CERT_EXPIRED'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_UPSTREAM_CERT_UNTRUSTED'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'ERR_UPSTREAM_CERT_UNTRUSTED'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_UPSTREAM_CERT_UNTRUSTED'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_UPSTREAM_CERT_UNTRUSTED'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_UPSTREAM_HOSTNAME_MISMATCH'],
    ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_UPSTREAM_TLS_VERSION'],
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_UPSTREAM_TLS_VERSION'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_UPSTREAM_TLS'],
    ['ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'ERR_UPSTREAM_TLS'],
    ['ECONNREFUSED', 'ERR_UPSTREAM_CONNECT'],
    ['ENOTFOUND', 'ERR_UPSTREAM_CONNECT'],
    ['UND_ERR_CONNECT_TIMEOUT', 'ERR_UPSTREAM_TIMEOUT'],
    ['UND_ERR_HEADERS_TIMEOUT', 'ERR_UPSTREAM_TIMEOUT'],
    ['UND_ERR_BODY_TIMEOUT', 'ERR_UPSTREAM_TIMEOUT'],
    ['UND_ERR_SOCKET', 'ERR_UPSTREAM_BAD_RESPONSE'],
    ['HPE_INVALID_CONSTANT', 'ERR_UPSTREAM_BAD_RESPONSE'],
    ['UND_ERR_ABORTED', 'ERR_UPSTREAM_ABORTED'],
    ['SOMETHING_NEW', 'ERR_UPSTREAM_CONNECT'],
  ])('%s → %s', (code, expected) => {
    const mapped = toUpstreamError(err(code));
    expect(mapped.code).toBe(expected);
    expect(mapped.message).not.toContain('secret');
  });

  it('follows the cause chain (fetch failed → cause)', () => {
    const wrapped = new TypeError('fetch failed', { cause: err('CERT_HAS_EXPIRED') });
    expect(toUpstreamError(wrapped).code).toBe('ERR_UPSTREAM_CERT_EXPIRED');
  });

  it('keeps an upstream ShieldError found in the chain (a pin mismatch from checkServerIdentity)', () => {
    const pin = new ShieldError('ERR_UPSTREAM_PIN_MISMATCH');
    expect(toUpstreamError(new TypeError('fetch failed', { cause: pin }))).toBe(pin);
  });

  it('an HTTP parser error without a code is a bad response', () => {
    expect(
      toUpstreamError(Object.assign(new Error('Invalid status code'), { name: 'HTTPParserError' })).code,
    ).toBe('ERR_UPSTREAM_BAD_RESPONSE');
  });

  it('an AbortError is a cancellation', () => {
    expect(toUpstreamError(new DOMException('aborted', 'AbortError')).code).toBe('ERR_UPSTREAM_ABORTED');
  });

  it('a cause cycle does not hang', () => {
    const a: { cause?: unknown } & Error = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(toUpstreamError(a).code).toBe('ERR_UPSTREAM_CONNECT');
  });
});

describe('toUpstreamError: the upstream refusing our client certificate', () => {
  it.each([
    // OpenSSL 3.0 (Node 20) spellings.
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'certificate required'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'unknown ca'],
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'bad certificate'],
    ['ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE', 'unsupported certificate'],
    ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'certificate expired'],
    ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'certificate revoked'],
    ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'certificate unknown'],
    ['ERR_SSL_TLSV1_ALERT_ACCESS_DENIED', 'access denied'],
    // OpenSSL 3.2+ (Node 24, 26) renamed the "sslv3 alert" reasons "ssl/tls alert".
    ['ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE', 'bad certificate'],
    ['ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_EXPIRED', 'certificate expired'],
    ['ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_REVOKED', 'certificate revoked'],
    ['ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_UNKNOWN', 'certificate unknown'],
  ])('%s → ERR_UPSTREAM_CLIENT_CERT_REFUSED, alert "%s" in detail and message only', (code, alert) => {
    const mapped = toUpstreamError(new TypeError('fetch failed', { cause: err(code) }));
    expect(mapped.code).toBe('ERR_UPSTREAM_CLIENT_CERT_REFUSED');
    expect(mapped.status).toBe(502);
    expect(mapped.details.detail).toBe(`TLS alert "${alert}" (${code})`);
    expect(mapped.message).toContain(alert);
    // The body a client sees is the catalogue's reason: no alert, no library message.
    const body = JSON.stringify(toHttpResponse(mapped).body);
    expect(body).not.toContain(alert);
    expect(body).not.toContain('secret');
  });

  it.each([
    // Also the end of a handshake with no common cipher or group: not a verdict on our certificate.
    ['ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'ERR_UPSTREAM_TLS'],
    ['ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE', 'ERR_UPSTREAM_TLS'],
    ['ERR_SSL_TLSV1_ALERT_DECODE_ERROR', 'ERR_UPSTREAM_TLS'],
    ['ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR', 'ERR_UPSTREAM_TLS'],
    ['ERR_SSL_CERTIFICATE_VERIFY_FAILED', 'ERR_UPSTREAM_TLS'],
    // A socket closed with no alert seen for its connection.
    ['UND_ERR_SOCKET', 'ERR_UPSTREAM_BAD_RESPONSE'],
  ])('%s stays %s', (code, expected) => {
    expect(toUpstreamError(err(code)).code).toBe(expected);
  });

  it.each([
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'certificate required'],
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'bad certificate'],
    ['ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_UNKNOWN', 'certificate unknown'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'unknown ca'],
  ])('clientCertAlertOf(%s) is "%s"', (code, alert) => {
    expect(clientCertAlertOf(code)).toBe(alert);
  });

  it.each([undefined, 42, '', 'ERR_SSL_TLSV13_ALERT_', 'X_ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'])(
    'clientCertAlertOf(%j) is undefined',
    (code) => {
      expect(clientCertAlertOf(code)).toBeUndefined();
    },
  );
});
