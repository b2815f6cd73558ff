import { constants as cryptoConstants } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import type { LoadedTlsBundle } from '@inference-shield/core';
import type { HttpsTls12Cipher, ResolvedHttpsOptions } from './https-options.interface.js';

/**
 * Mozilla "intermediate" TLS 1.2 suites (server-side TLS guidelines v5.7): ECDHE only (forward
 * secrecy), AEAD only (no CBC, so no Lucky13/POODLE-style padding oracles, no SHA-1 MAC), no CCM.
 * Node's default list offers 21 suites, static-RSA and CBC ones included.
 */
export const TLS12_CIPHERS: readonly HttpsTls12Cipher[] = Object.freeze([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
]);

/** The three TLS 1.3 suites of RFC 8446 §9.1 that OpenSSL enables: all AEAD. Named so the list is explicit. */
export const TLS13_CIPHERS: readonly string[] = Object.freeze([
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
]);

/** Key-exchange groups: X25519 first (RFC 7748), then the NIST curves most clients have. */
export const ECDH_CURVES = 'X25519:P-256:P-384';

/**
 * OpenSSL options: refuse every renegotiation (client-initiated renegotiation is a cheap CPU
 * amplification and the RFC 5746 attack surface; HTTP/1.1 servers never need it) and never
 * accept an SSLv3 or TLS 1.0/1.1 handshake even if `minVersion` were bypassed. (SSLv2 is not
 * compiled into OpenSSL 3 at all: its flag is 0.)
 */
export const SECURE_OPTIONS =
  cryptoConstants.SSL_OP_NO_RENEGOTIATION |
  cryptoConstants.SSL_OP_NO_SSLv3 |
  cryptoConstants.SSL_OP_NO_TLSv1 |
  cryptoConstants.SSL_OP_NO_TLSv1_1;

/** The `ciphers` string for Node: TLS 1.3 suites (prefix `TLS_`) and the chosen TLS 1.2 suites. */
export function cipherString(tls12: readonly HttpsTls12Cipher[]): string {
  return [...TLS13_CIPHERS, ...tls12].join(':');
}

/**
 * Everything a secure context needs, for the first start and for every `setSecureContext` (which
 * rebuilds the context from these options alone: forgetting a field there would silently drop it).
 */
export function secureContextOptions(
  bundle: LoadedTlsBundle,
  options: ResolvedHttpsOptions,
): SecureContextOptions {
  const context: SecureContextOptions = {
    cert: bundle.cert,
    key: bundle.key,
    minVersion: options.tls.minVersion,
    maxVersion: 'TLSv1.3',
    ciphers: cipherString(options.tls.ciphers),
    ecdhCurve: ECDH_CURVES,
    honorCipherOrder: true,
    secureOptions: SECURE_OPTIONS,
  };
  if (bundle.ca !== undefined) context.ca = bundle.ca;
  // One array element per checked CRL: given the whole file, Node would load only its first CRL
  // (a revocation listed in a later one would be ignored) and never a block the loader skipped.
  if (bundle.crls !== undefined) context.crl = [...bundle.crls];
  else if (bundle.crl !== undefined) context.crl = bundle.crl;
  return context;
}
