import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';

const thumbprints = new WeakMap<object, string>();

/**
 * RFC 8705 §3.1: the base64url SHA-256 of the certificate's DER, the value of `cnf["x5t#S256"]`.
 * Memoized per object, since a TLS connection hands us the same certificate for every request.
 *
 * @example
 * certificateThumbprint(socket.getPeerX509Certificate()); // 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2'
 */
export function certificateThumbprint(cert: Buffer | X509Certificate): string {
  let value = thumbprints.get(cert);
  if (value === undefined) {
    let der: Buffer;
    if (cert instanceof X509Certificate) der = cert.raw;
    else if (Buffer.isBuffer(cert)) der = cert;
    else throw new TypeError('certificateThumbprint() needs a DER Buffer or an X509Certificate');
    value = createHash('sha256').update(der).digest('base64url');
    thumbprints.set(cert, value);
  }
  return value;
}

/** Constant-time comparison of two thumbprints (they are not secret, but it costs nothing). */
export function sameThumbprint(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
