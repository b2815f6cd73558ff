import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';

/**
 * RFC 8705 §3.1: the base64url SHA-256 of the certificate's DER, the value of `cnf["x5t#S256"]`.
 * Not memoized: the guard computes it once per connection (with the peer's identity) and passes
 * it in the verify context.
 *
 * @example
 * certificateThumbprint(socket.getPeerX509Certificate()); // 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2'
 */
export function certificateThumbprint(cert: Buffer | X509Certificate): string {
  let der: Buffer;
  if (cert instanceof X509Certificate) der = cert.raw;
  else if (Buffer.isBuffer(cert)) der = cert;
  else throw new TypeError('certificateThumbprint() needs a DER Buffer or an X509Certificate');
  return createHash('sha256').update(der).digest('base64url');
}

/** Constant-time comparison of two thumbprints (they are not secret, but it costs nothing). */
export function sameThumbprint(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
