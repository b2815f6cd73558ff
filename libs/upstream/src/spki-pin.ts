import { createHash, X509Certificate } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { ShieldError } from '@inference-shield/core/internal';

/**
 * The pin of a public key: base64 SHA-256 of its DER SubjectPublicKeyInfo (RFC 7469 §2.4, the form
 * `openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64` prints).
 *
 * @example spkiPin(new X509Certificate(pem)) // 'n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg='
 */
export function spkiPin(cert: X509Certificate | Pick<PeerCertificate, 'raw'>): string {
  // PeerCertificate.pubkey is the bare key (the EC point for ECDSA), not the SPKI that pins hash:
  // parse the DER certificate instead. Only done when pins are configured, once per handshake.
  const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert.raw);
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/**
 * A `checkServerIdentity` for `tls.connect`: Node's host name check (RFC 6125), then, when pins are
 * configured, the leaf key against them. Node calls it after chain verification and before the
 * socket is handed over, so a mismatch ends the connection with no request byte written.
 *
 * Only the leaf is compared: the chain as the server sent it is not the path OpenSSL verified, so
 * a server could append a certificate carrying a pinned key it does not hold.
 */
export function buildServerIdentityCheck(
  pins: readonly string[],
): (host: string, cert: PeerCertificate) => Error | undefined {
  const allowed = new Set(pins);
  return (host, cert) => {
    const hostError = checkServerIdentity(host, cert);
    if (hostError !== undefined) return hostError;
    if (allowed.size === 0) return undefined;
    let pin: string;
    try {
      pin = spkiPin(cert);
    } catch (err) {
      return new ShieldError('ERR_UPSTREAM_PIN_MISMATCH', {
        detail: 'the server certificate key cannot be read',
        cause: err,
      });
    }
    if (!allowed.has(pin)) {
      return new ShieldError('ERR_UPSTREAM_PIN_MISMATCH', {
        detail: `server key pin ${pin} is not configured`,
      });
    }
    return undefined;
  };
}
