import { createHash, X509Certificate } from 'node:crypto';

/**
 * Anything that carries a certificate's subjectAltName: a `crypto.X509Certificate`, or the object
 * `tlsSocket.getPeerCertificate()` returns (its `subjectaltname` uses the same escaped format).
 */
export type SubjectAltNameSource = X509Certificate | { readonly subjectaltname?: string | undefined };

/** The subject alternative names of a certificate, by type. IPv6 addresses are in RFC 5952 form. */
export interface SubjectAltNames {
  readonly dns: readonly string[];
  readonly ip: readonly string[];
  readonly uri: readonly string[];
  readonly email: readonly string[];
}

/** A parsed SPIFFE ID: `spiffe://<trustDomain><path>`; `path` is `''` for a trust domain ID. */
export interface SpiffeId {
  readonly trustDomain: string;
  readonly path: string;
}

/**
 * SHA-256 of the certificate's DER encoding, lowercase hex without colons (the form RFC 8705
 * `x5t#S256` is compared against once decoded, and the form used in logs and pins).
 */
export function certificateFingerprint(cert: X509Certificate | Buffer): string {
  const der = cert instanceof X509Certificate ? cert.raw : cert;
  return createHash('sha256').update(der).digest('hex');
}

// Node prints a SAN value as a JSON string when it holds characters that could be mistaken for
// separators (CVE-2021-44532): `DNS:"a\u002c DNS:evil"`. This is Node's own grammar for that string.
// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON strings exclude
const JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/;

/** Longest subjectAltName string we parse; larger ones are treated as carrying no names. */
const MAX_SAN_LENGTH = 64 * 1024;

/**
 * Split Node's subjectAltName rendering into `TYPE:value` entries. Mirrors Node's own
 * `splitEscapedAltNames` (lib/tls.js): a naive `split(', ')` would let a DNS name that contains
 * `, URI:spiffe://...` forge a second entry. Returns undefined for a malformed string.
 */
function splitAltNames(altNames: string): string[] | undefined {
  const result: string[] = [];
  let token = '';
  let offset = 0;
  while (offset < altNames.length) {
    const nextSep = altNames.indexOf(', ', offset);
    const nextQuote = altNames.indexOf('"', offset);
    if (nextQuote !== -1 && (nextSep === -1 || nextQuote < nextSep)) {
      token += altNames.substring(offset, nextQuote);
      const match = JSON_STRING.exec(altNames.substring(nextQuote));
      if (!match) return undefined;
      try {
        token += JSON.parse(match[0]) as string;
      } catch {
        return undefined;
      }
      offset = nextQuote + match[0].length;
    } else if (nextSep !== -1) {
      token += altNames.substring(offset, nextSep);
      result.push(token);
      token = '';
      offset = nextSep + 2;
    } else {
      token += altNames.substring(offset);
      offset = altNames.length;
    }
  }
  result.push(token);
  return result;
}

function sanStringOf(cert: SubjectAltNameSource): string | undefined {
  if (cert instanceof X509Certificate) return cert.subjectAltName;
  const value = cert.subjectaltname;
  return typeof value === 'string' ? value : undefined;
}

/** RFC 5952 text form of an IPv6 address (Node prints `0:0:0:0:0:0:0:1` for `::1`). */
function canonicalIp(value: string): string {
  if (!value.includes(':')) return value;
  try {
    return new URL(`http://[${value}]/`).hostname.slice(1, -1);
  } catch {
    return value;
  }
}

const EMPTY_SANS: SubjectAltNames = Object.freeze({
  dns: Object.freeze([]),
  ip: Object.freeze([]),
  uri: Object.freeze([]),
  email: Object.freeze([]),
});

/**
 * The DNS, IP, URI and email subject alternative names of a certificate. Other name types
 * (DirName, othername, Registered ID) are ignored. A subjectAltName string that cannot be parsed
 * yields no names at all: callers match identities against these lists, so "nothing" fails closed.
 */
export function subjectAltNames(cert: SubjectAltNameSource): SubjectAltNames {
  const raw = sanStringOf(cert);
  if (raw === undefined || raw.length === 0 || raw.length > MAX_SAN_LENGTH) return EMPTY_SANS;
  const entries = splitAltNames(raw);
  if (!entries) return EMPTY_SANS;
  const dns: string[] = [];
  const ip: string[] = [];
  const uri: string[] = [];
  const email: string[] = [];
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    if (colon === -1) continue;
    const type = entry.slice(0, colon);
    const value = entry.slice(colon + 1);
    switch (type) {
      case 'DNS':
        dns.push(value);
        break;
      case 'IP Address':
        ip.push(canonicalIp(value));
        break;
      case 'URI':
        uri.push(value);
        break;
      case 'email':
        email.push(value);
        break;
      default:
        break;
    }
  }
  return Object.freeze({
    dns: Object.freeze(dns),
    ip: Object.freeze(ip),
    uri: Object.freeze(uri),
    email: Object.freeze(email),
  });
}

/** SPIFFE-ID spec §2.3: a SPIFFE ID is at most 2048 bytes. */
const MAX_SPIFFE_ID_BYTES = 2048;
// SPIFFE-ID spec §2.1: trust domain characters are lowercase letters, digits, '.', '-', '_' only
// (so no port, no userinfo, no percent-encoding). §2.2: path segments add uppercase letters.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
const SCHEME = 'spiffe://';

/**
 * Parse and validate a SPIFFE ID per the SPIFFE-ID specification: scheme `spiffe` (lowercase),
 * a non-empty lowercase trust domain, an optional path of non-empty segments other than `.`/`..`,
 * no trailing slash, query, fragment, port or userinfo, at most 2048 bytes. Returns undefined
 * when `id` is not a valid SPIFFE ID.
 *
 * @example parseSpiffeId('spiffe://shield.local/demo') // { trustDomain: 'shield.local', path: '/demo' }
 */
export function parseSpiffeId(id: string): SpiffeId | undefined {
  if (typeof id !== 'string' || !id.startsWith(SCHEME)) return undefined;
  if (id.length > MAX_SPIFFE_ID_BYTES || Buffer.byteLength(id, 'utf8') > MAX_SPIFFE_ID_BYTES)
    return undefined;
  const rest = id.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (!TRUST_DOMAIN.test(trustDomain)) return undefined;
  if (path !== '') {
    // Leading '/' gives one empty first element; every other segment must be a valid, non-dot name.
    const segments = path.slice(1).split('/');
    for (const segment of segments) {
      if (!PATH_SEGMENT.test(segment) || segment === '.' || segment === '..') return undefined;
    }
  }
  return Object.freeze({ trustDomain, path });
}

/**
 * The SPIFFE ID of an X.509-SVID, or undefined. The X509-SVID spec §2 says an SVID carries exactly
 * one URI SAN, so a certificate with several URI SANs (or one that is not a valid SPIFFE ID) has no
 * SPIFFE identity: picking "the first spiffe:// one" would let a CA-signed certificate smuggle a
 * second identity.
 */
export function spiffeIdOf(cert: SubjectAltNameSource): string | undefined {
  const { uri } = subjectAltNames(cert);
  if (uri.length !== 1) return undefined;
  const [only] = uri;
  if (only === undefined) return undefined;
  return parseSpiffeId(only) ? only : undefined;
}
