import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readBoundedFile } from '@inference-shield/core/internal';

/** Reads a private key given as `{ file }` or `{ pem }`; a bad one throws a TypeError naming `field`, never the key. */
export function readPrivateKey(field: string, source: { file: string } | { pem: string }): KeyObject {
  const pem =
    'file' in source ? readBoundedFile(source.file, 'private key', 64 * 1024).toString('utf8') : source.pem;
  try {
    return createPrivateKey(pem);
  } catch (err) {
    // Never quote the key, not even its beginning.
    throw new TypeError(`"${field}" does not hold a readable private key (PEM)`, { cause: err });
  }
}

/** The JWS algorithm a key signs with when none is configured. */
export function defaultAlgorithm(field: string, key: KeyObject): string {
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'rsa' || type === 'rsa-pss') return 'PS256';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    if (curve === 'secp384r1') return 'ES384';
    if (curve === 'secp521r1') return 'ES512';
  }
  throw new TypeError(`"${field}.alg" is required for this key type (${type ?? 'unknown'})`);
}
