import { createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext as tlsSecureContext } from 'node:tls';
import {
  certificateFingerprint,
  isShieldError,
  parseCaPem,
  parseCertificatePem,
  ShieldError,
  spiffeIdOf,
  type LoadedTlsBundle,
} from '@inference-shield/core/internal';
import type { HttpsTlsSource } from './https-options.interface.js';

/** What {@link HttpsCertificateInfo.files} names for material that came from `tls.source`. */
export const TLS_SOURCE_LABEL = 'tls.source';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** The file loader's key-strength rule (Mozilla "intermediate"), for material that is not a file. */
function strongEnough(key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') return (details.modulusLength ?? 0) >= 2048;
  if (type === 'ec') return ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '');
  return type === 'ed25519' || type === 'ed448';
}

function invalid(message: string, cause?: unknown): ShieldError {
  return new ShieldError('ERR_CERT_INVALID', { message: `tls.source: ${message}`, cause });
}

/**
 * The current material of a `tls.source`, checked as the file loader checks files: the chain
 * parses (strict PEM blocks), the leaf is within its validity period and allowed for serverAuth,
 * the key parses and matches it, OpenSSL accepts the pair, and the CA (when trust comes from the
 * source) parses. A refusal is a `ShieldError` `ERR_CERT_*` naming `tls.source` and the problem,
 * never the material. Synchronous, for start-up and for each change the source announces.
 */
export function loadTlsSource(source: HttpsTlsSource, trust: boolean, now = Date.now()): LoadedTlsBundle {
  let material: ReturnType<HttpsTlsSource['current']>;
  try {
    material = source.current();
  } catch (err) {
    throw isShieldError(err) ? err : invalid('current() failed', err);
  }
  if (typeof material !== 'object' || material === null) throw invalid('current() returned no material');
  const { cert, key, ca } = material;
  if (
    (typeof cert !== 'string' && !Buffer.isBuffer(cert)) ||
    (typeof key !== 'string' && !Buffer.isBuffer(key))
  ) {
    throw invalid('current() must return cert and key as PEM strings or Buffers');
  }
  const certBytes = typeof cert === 'string' ? Buffer.from(cert, 'utf8') : Buffer.from(cert);
  const keyBytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  const [leaf] = parseCertificatePem(certBytes, `${TLS_SOURCE_LABEL}.cert`);
  if (leaf === undefined) throw invalid('the certificate chain is empty');
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now > notAfter.getTime()) {
    throw new ShieldError('ERR_CERT_EXPIRED', {
      message: `tls.source: certificate expired on ${notAfter.toISOString()}`,
    });
  }
  if (now < notBefore.getTime()) {
    throw new ShieldError('ERR_CERT_NOT_YET_VALID', {
      message: `tls.source: certificate is not valid before ${notBefore.toISOString()}`,
    });
  }
  const eku = leaf.keyUsage as string[] | undefined;
  if (eku !== undefined && !eku.includes(SERVER_AUTH)) {
    throw new ShieldError('ERR_CERT_USAGE', {
      message: 'tls.source: certificate is not allowed for TLS server authentication (no serverAuth)',
    });
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey({ key: keyBytes, format: 'pem' }));
  } catch (err) {
    throw new ShieldError('ERR_CERT_KEY_INVALID', {
      message: 'tls.source: the key cannot be parsed',
      cause: err,
    });
  }
  if (!matches)
    throw new ShieldError('ERR_CERT_KEY_MISMATCH', {
      message: 'tls.source: the key does not match the certificate',
    });
  if (!strongEnough(leaf.publicKey)) {
    throw invalid(
      'the certificate key is weak (RSA under 2048 bits, or an EC curve other than P-256/384/521)',
    );
  }
  let caBytes: Buffer | undefined;
  if (trust) {
    if (typeof ca !== 'string' && !Buffer.isBuffer(ca)) {
      throw invalid('"mtls.ca" is { tlsSource: true } but current() returned no ca');
    }
    caBytes = parseCaPem(typeof ca === 'string' ? ca : Buffer.from(ca), `${TLS_SOURCE_LABEL}.ca`);
  }
  try {
    tlsSecureContext({ cert: certBytes, key: keyBytes });
  } catch (err) {
    throw invalid('OpenSSL refuses the certificate with its key', err);
  }
  const spiffeId = spiffeIdOf(leaf);
  return Object.freeze({
    files: Object.freeze({ cert: TLS_SOURCE_LABEL, key: TLS_SOURCE_LABEL }),
    cert: certBytes,
    key: keyBytes,
    ...(caBytes !== undefined ? { ca: caBytes } : {}),
    leaf,
    fingerprint256: certificateFingerprint(leaf),
    notBefore,
    notAfter,
    ...(spiffeId !== undefined ? { spiffeId } : {}),
  });
}
