import { verify as cryptoVerify, type X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';

/**
 * The facts of one CRL (RFC 5280 §5.1) the loader checks. Parsed with a small DER reader rather
 * than @peculiar/x509, whose import costs most of a second: every user of `@inference-shield/core` would pay
 * it at start-up. OpenSSL itself parses the CRL too (see {@link parseCrl}), so what TLS will use
 * is exactly what was checked.
 */
export interface ParsedCrl {
  /** DER of the issuer Name. */
  readonly issuer: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** The signed bytes (tbsCertList, with its header). */
  readonly tbs: Buffer;
  /** Node digest name for crypto.verify; null for Ed25519; undefined for an algorithm we do not know. */
  readonly digest: string | null | undefined;
  readonly signature: Buffer;
  /**
   * This CRL alone, re-encoded as PEM: exactly what OpenSSL parsed above. Give Node's `crl` option
   * these, one per array element: from a PEM string holding several CRLs it loads only the first.
   */
  readonly pem: string;
}

interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly contentStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

/** Read one DER TLV at `offset` (single-byte tags, definite lengths of up to 4 bytes), within `limit`. */
function readTlv(der: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER');
  const tag = der[offset] ?? 0;
  const first = der[offset + 1] ?? 0;
  let length = first;
  let contentStart = offset + 2;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || offset + 2 + n > limit) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[offset + 2 + i] ?? 0);
    contentStart = offset + 2 + n;
  }
  const end = contentStart + length;
  if (end > limit) throw new Error('DER length past its container');
  return { tag, start: offset, contentStart, end };
}

function expectTag(tlv: Tlv, tag: number, what: string): Tlv {
  if (tlv.tag !== tag) throw new Error(`expected ${what}`);
  return tlv;
}

const SEQUENCE = 0x30;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/** RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY) or GeneralizedTime YYYYMMDDHHMMSSZ. */
function readTime(der: Buffer, tlv: Tlv): Date {
  const text = der.toString('latin1', tlv.contentStart, tlv.end);
  const m =
    tlv.tag === UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) throw new Error('malformed time');
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const year = tlv.tag === UTC_TIME ? (y < 50 ? 2000 + y : 1900 + y) : y;
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, s));
  if (Number.isNaN(date.getTime()) || date.getUTCDate() !== d) throw new Error('invalid time');
  return date;
}

// Signature algorithms a CRL may use, by the hex of their OID's DER content, with node's digest.
const SIGNATURE_ALGORITHMS: ReadonlyMap<string, string | null> = new Map([
  ['2a8648ce3d040302', 'sha256'], // ecdsa-with-SHA256
  ['2a8648ce3d040303', 'sha384'], // ecdsa-with-SHA384
  ['2a8648ce3d040304', 'sha512'], // ecdsa-with-SHA512
  ['2a864886f70d01010b', 'sha256'], // sha256WithRSAEncryption
  ['2a864886f70d01010c', 'sha384'], // sha384WithRSAEncryption
  ['2a864886f70d01010d', 'sha512'], // sha512WithRSAEncryption
  ['2b6570', null], // Ed25519
]);

/**
 * Parse one DER CRL. Throws when OpenSSL cannot load it or its structure is not a CertificateList.
 */
export function parseCrl(der: Buffer): ParsedCrl {
  // The parser that matters is OpenSSL's: this is the call `tls.createSecureContext({ crl })` makes.
  // Lines of at most 64 characters and no empty line: appending "\n" after every 64th character
  // left a blank line before END whenever the base64 length is a multiple of 64 (DER length 46 to
  // 48 mod 48, about one CRL in sixteen), which OpenSSL refuses, so such a valid CRL was refused.
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  const pem = `-----BEGIN X509 CRL-----\n${lines.join('\n')}\n-----END X509 CRL-----\n`;
  createSecureContext({ crl: pem });

  const outer = expectTag(readTlv(der, 0, der.length), SEQUENCE, 'CertificateList');
  if (outer.end !== der.length) throw new Error('trailing bytes after the CRL');
  const tbs = expectTag(readTlv(der, outer.contentStart, outer.end), SEQUENCE, 'tbsCertList');
  const alg = expectTag(readTlv(der, tbs.end, outer.end), SEQUENCE, 'signatureAlgorithm');
  const oid = expectTag(readTlv(der, alg.contentStart, alg.end), 0x06, 'algorithm OID');
  const sig = expectTag(readTlv(der, alg.end, outer.end), 0x03, 'signatureValue');
  if (sig.end !== outer.end || sig.end - sig.contentStart < 2 || der[sig.contentStart] !== 0) {
    throw new Error('malformed signatureValue');
  }

  let t = readTlv(der, tbs.contentStart, tbs.end);
  if (t.tag === 0x02) t = readTlv(der, t.end, tbs.end); // version
  const innerAlg = expectTag(t, SEQUENCE, 'signature');
  // RFC 5280 §5.1.1.2: the signed algorithm must equal the outer one (no algorithm substitution).
  if (!der.subarray(innerAlg.start, innerAlg.end).equals(der.subarray(alg.start, alg.end))) {
    throw new Error('inner and outer signature algorithms differ');
  }
  const issuer = expectTag(readTlv(der, innerAlg.end, tbs.end), SEQUENCE, 'issuer');
  const thisTlv = readTlv(der, issuer.end, tbs.end);
  if (thisTlv.tag !== UTC_TIME && thisTlv.tag !== GENERALIZED_TIME) throw new Error('expected thisUpdate');
  let nextUpdate: Date | undefined;
  if (thisTlv.end < tbs.end) {
    const next = readTlv(der, thisTlv.end, tbs.end);
    if (next.tag === UTC_TIME || next.tag === GENERALIZED_TIME) nextUpdate = readTime(der, next);
  }
  return {
    issuer: der.subarray(issuer.start, issuer.end),
    thisUpdate: readTime(der, thisTlv),
    nextUpdate,
    tbs: der.subarray(tbs.start, tbs.end),
    digest: SIGNATURE_ALGORITHMS.get(der.toString('hex', oid.contentStart, oid.end)),
    signature: der.subarray(sig.contentStart + 1, sig.end),
    pem,
  };
}

/** DER of a certificate's subject Name (RFC 5280 §4.1: the sixth field of tbsCertificate). */
function subjectOf(cert: X509Certificate): Buffer {
  const der = cert.raw;
  const outer = expectTag(readTlv(der, 0, der.length), SEQUENCE, 'Certificate');
  const tbs = expectTag(readTlv(der, outer.contentStart, outer.end), SEQUENCE, 'tbsCertificate');
  let t = readTlv(der, tbs.contentStart, tbs.end);
  if (t.tag === 0xa0) t = readTlv(der, t.end, tbs.end); // [0] version
  // serialNumber (t), signature, issuer, validity, then subject.
  for (let i = 0; i < 4; i++) t = readTlv(der, t.end, tbs.end);
  return der.subarray(expectTag(t, SEQUENCE, 'subject').start, t.end);
}

function sameName(ca: X509Certificate, issuer: Buffer): boolean {
  try {
    return subjectOf(ca).equals(issuer);
  } catch {
    return false;
  }
}

/** A signature check that treats a key/algorithm mismatch (node throws) as "does not verify". */
function verifies(crl: ParsedCrl, ca: X509Certificate): boolean {
  if (crl.digest === undefined) return false;
  try {
    return cryptoVerify(crl.digest, crl.tbs, ca.publicKey, crl.signature);
  } catch {
    return false;
  }
}

/**
 * Why `crl` cannot be used with these CA certificates, or undefined when it can. OpenSSL (and so
 * Node's `crl` option, which turns on CRL_CHECK|CRL_CHECK_ALL) refuses every certificate whose
 * issuer has no valid CRL: a CRL from another issuer, badly signed, or expired would silently
 * refuse every client. We refuse it at load time instead, with a reason an operator can act on.
 */
export function crlProblem(crl: ParsedCrl, cas: readonly X509Certificate[], now: Date): string | undefined {
  if (crl.thisUpdate.getTime() > now.getTime()) {
    return `is not valid before ${crl.thisUpdate.toISOString()} (thisUpdate)`;
  }
  if (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < now.getTime()) {
    return `expired on ${crl.nextUpdate.toISOString()} (nextUpdate); OpenSSL would refuse every certificate`;
  }
  if (crl.digest === undefined) return 'uses an unsupported signature algorithm';
  // OpenSSL finds a CRL by its issuer name, then checks the signature with that issuer's key.
  const signer = cas.find((ca) => sameName(ca, crl.issuer) && verifies(crl, ca));
  return signer ? undefined : 'is not signed by any certificate of the CA file';
}
