import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { tlsSocketOf } from '@inference-shield/core/internal';

export { tlsSocketOf };

/**
 * The client certificate that the TLS handshake verified against the configured CA (and CRL), for
 * Express and Fastify requests. Undefined when the client sent none, or sent one that did not verify
 * (possible in `optional` mode): an unverified certificate is never an identity. It is read from the
 * TLS socket only; headers such as `X-Client-Cert` are never looked at, anyone can send them.
 *
 * @example
 * const cert = peerCertificateOf(context.switchToHttp().getRequest());
 */
export function peerCertificateOf(request: object): PeerCertificate | undefined {
  const socket = tlsSocketOf(request);
  if (socket === undefined || socket.authorized !== true) return undefined;
  const cert = socket.getPeerCertificate(false);
  // Node returns an empty object when there is no certificate.
  return cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0 ? cert : undefined;
}

/** Like {@link peerCertificateOf}, as an `X509Certificate` (for fingerprints, SANs, `checkIssued`). */
export function peerX509CertificateOf(request: object): X509Certificate | undefined {
  const socket = tlsSocketOf(request);
  if (socket === undefined || socket.authorized !== true) return undefined;
  return socket.getPeerX509Certificate();
}
