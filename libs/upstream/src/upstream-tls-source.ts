import { createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { isShieldError, parseCertificatePem, ShieldError } from '@inference-shield/core/internal';

/**
 * A client certificate that changes over time (a SPIFFE X.509-SVID from the Workload API, a secret
 * manager), given instead of files. `@inference-shield/spiffe`'s `x509TlsSource(source, { trust:
 * false })` is one. Structural: this package does not depend on the one that provides it.
 */
export interface UpstreamTlsSource {
  /** The certificate chain and its key, PEM. A `ca` it returns is ignored: trust is `ca`'s. */
  current(): { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Call `onChange` whenever `current()` changes; returns the function that unsubscribes. */
  subscribe(onChange: () => void): () => void;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

function strongEnough(key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') return (details.modulusLength ?? 0) >= 2048;
  if (type === 'ec') return ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '');
  return type === 'ed25519' || type === 'ed448';
}

/**
 * The current client certificate of a source, checked as the file loader checks files: strict
 * PEM, within its validity period, allowed for clientAuth, a strong key that matches, accepted by
 * OpenSSL. A refusal is a `ShieldError` `ERR_CERT_*` naming `field`, never the material.
 */
export function loadUpstreamTlsSource(
  source: UpstreamTlsSource,
  field: string,
  now = Date.now(),
): { cert: Buffer; key: Buffer } {
  const fail = (
    code:
      | 'ERR_CERT_INVALID'
      | 'ERR_CERT_EXPIRED'
      | 'ERR_CERT_NOT_YET_VALID'
      | 'ERR_CERT_USAGE'
      | 'ERR_CERT_KEY_INVALID'
      | 'ERR_CERT_KEY_MISMATCH',
    problem: string,
    cause?: unknown,
  ): ShieldError => new ShieldError(code, { message: `${field}: ${problem}`, cause });
  let material: ReturnType<UpstreamTlsSource['current']>;
  try {
    material = source.current();
  } catch (err) {
    throw isShieldError(err) ? err : fail('ERR_CERT_INVALID', 'current() failed', err);
  }
  const { cert, key } = material ?? {};
  if (
    (typeof cert !== 'string' && !Buffer.isBuffer(cert)) ||
    (typeof key !== 'string' && !Buffer.isBuffer(key))
  ) {
    throw fail('ERR_CERT_INVALID', 'current() must return cert and key as PEM strings or Buffers');
  }
  const certBytes = typeof cert === 'string' ? Buffer.from(cert, 'utf8') : Buffer.from(cert);
  const keyBytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  const [leaf] = parseCertificatePem(certBytes, `${field}.cert`);
  if (leaf === undefined) throw fail('ERR_CERT_INVALID', 'the certificate chain is empty');
  const notBefore = new Date(leaf.validFrom).getTime();
  const notAfter = new Date(leaf.validTo).getTime();
  if (!(now <= notAfter)) throw fail('ERR_CERT_EXPIRED', `the certificate expired on ${leaf.validTo}`);
  if (!(now >= notBefore))
    throw fail('ERR_CERT_NOT_YET_VALID', `the certificate is not valid before ${leaf.validFrom}`);
  const eku = leaf.keyUsage as string[] | undefined;
  if (eku !== undefined && !eku.includes(CLIENT_AUTH)) {
    throw fail(
      'ERR_CERT_USAGE',
      'the certificate is not allowed for TLS client authentication (no clientAuth)',
    );
  }
  if (!strongEnough(leaf.publicKey)) throw fail('ERR_CERT_INVALID', 'the certificate key is weak');
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey({ key: keyBytes, format: 'pem' }));
  } catch (err) {
    throw fail('ERR_CERT_KEY_INVALID', 'the key cannot be parsed', err);
  }
  if (!matches) throw fail('ERR_CERT_KEY_MISMATCH', 'the key does not match the certificate');
  try {
    createSecureContext({ cert: certBytes, key: keyBytes });
  } catch (err) {
    throw fail('ERR_CERT_INVALID', 'OpenSSL refuses the certificate with its key', err);
  }
  return { cert: certBytes, key: keyBytes };
}
