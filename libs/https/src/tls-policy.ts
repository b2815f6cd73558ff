import { constants as cryptoConstants } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import type { LoadedTlsBundle } from '@inference-shield/core/internal';
import {
  cipherString,
  ECDH_CURVES,
  keyExchangeGroups,
  PQ_ECDH_CURVES,
  TLS12_CIPHERS,
  TLS13_CIPHERS,
  type KeyExchangeGroups,
} from '@inference-shield/core/internal';
import type { ResolvedHttpsOptions } from './https-options.interface.js';

// The suite lists and the key-exchange groups are core's, shared with the outbound client and the
// dev tools; re-exported here as part of this package's public API.
export { TLS12_CIPHERS, TLS13_CIPHERS, ECDH_CURVES, PQ_ECDH_CURVES, cipherString, keyExchangeGroups };
export type { KeyExchangeGroups };

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

/**
 * Everything a secure context needs, for the first start and for every `setSecureContext` (which
 * rebuilds the context from these options alone: forgetting a field there would silently drop it).
 */
export function secureContextOptions(
  bundle: LoadedTlsBundle,
  options: ResolvedHttpsOptions,
  staticCa?: Buffer,
): SecureContextOptions {
  const context: SecureContextOptions = {
    cert: bundle.cert,
    key: bundle.key,
    minVersion: options.tls.minVersion,
    maxVersion: 'TLSv1.3',
    ciphers: cipherString(options.tls.ciphers),
    // X25519MLKEM768 first where OpenSSL 3.5 offers it, else the classical groups: probed once per
    // process, so a reload (which rebuilds the context from these options) keeps the same groups.
    ecdhCurve: keyExchangeGroups().ecdhCurve,
    honorCipherOrder: true,
    secureOptions: SECURE_OPTIONS,
  };
  // The client CA: from the bundle when it is a watched file, else the PEM text loaded at start-up.
  const ca = bundle.ca ?? staticCa;
  if (ca !== undefined) context.ca = ca;
  // One array element per checked CRL: given the whole file, Node would load only its first CRL
  // (a revocation listed in a later one would be ignored) and never a block the loader skipped.
  if (bundle.crls !== undefined) context.crl = [...bundle.crls];
  else if (bundle.crl !== undefined) context.crl = bundle.crl;
  return context;
}
