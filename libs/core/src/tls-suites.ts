/**
 * The one TLS suite policy of Inference Shield, for inbound servers (`@inference-shield/https`, the
 * dev tools) and outbound clients (`@inference-shield/upstream`) alike.
 */

/** TLS 1.2 cipher suites we may offer: ECDHE key exchange with an AEAD cipher only. */
export type Tls12Cipher =
  | 'ECDHE-ECDSA-AES128-GCM-SHA256'
  | 'ECDHE-RSA-AES128-GCM-SHA256'
  | 'ECDHE-ECDSA-AES256-GCM-SHA384'
  | 'ECDHE-RSA-AES256-GCM-SHA384'
  | 'ECDHE-ECDSA-CHACHA20-POLY1305'
  | 'ECDHE-RSA-CHACHA20-POLY1305';

/**
 * Mozilla "intermediate" TLS 1.2 suites (server-side TLS guidelines v5.7): ECDHE only (forward
 * secrecy), AEAD only (no CBC, so no Lucky13/POODLE-style padding oracles, no SHA-1 MAC), no CCM.
 * Node's default list offers 21 suites, static-RSA and CBC ones included.
 */
export const TLS12_CIPHERS: readonly Tls12Cipher[] = Object.freeze([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const);

/**
 * The three TLS 1.3 suites of RFC 8446 §9.1 that OpenSSL enables: all AEAD. Named so the list is
 * explicit. AES-128-GCM comes first (OpenSSL puts AES-256 first): the same security margin for TLS
 * (128-bit), and measurably cheaper per request (bench/upstream).
 */
export const TLS13_CIPHERS: readonly string[] = Object.freeze([
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
]);

/** Key-exchange groups: X25519 first (RFC 7748), then the NIST curves most clients have. */
export const ECDH_CURVES = 'X25519:P-256:P-384';

/** The `ciphers` string for Node: the TLS 1.3 suites (prefix `TLS_`), then the given TLS 1.2 suites. */
export function cipherString(tls12: readonly Tls12Cipher[] = TLS12_CIPHERS): string {
  return [...TLS13_CIPHERS, ...tls12].join(':');
}
