import type { X509Certificate } from 'node:crypto';
import { TLSSocket, type PeerCertificate } from 'node:tls';

/**
 * The TLS socket under a request: `req.socket` for Express and raw Node requests, `req.raw.socket`
 * for Fastify. Undefined when the request did not arrive over TLS.
 */
export function tlsSocketOf(request: object): TLSSocket | undefined {
  const r = request as { socket?: unknown; raw?: { socket?: unknown } };
  const socket = r.raw?.socket ?? r.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}

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
