import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { certificateFingerprint, spiffeIdOf, subjectAltNames } from '@inference-shield/core/internal';
import type { ShieldPrincipal } from './principal.interface.js';
import { parseWorkloadSpiffeId } from './spiffe-id.js';
import type { VerifyContext } from './tokens/index.js';

/** What the guard knows about a verified TLS client certificate. */
export interface PeerIdentity {
  readonly certificate: X509Certificate;
  /** Lowercase hex SHA-256 of the DER certificate. */
  readonly fingerprint256: string;
  readonly spiffeId: string | undefined;
  readonly trustDomain: string | undefined;
  readonly commonName: string | undefined;
  readonly issuer: string;
  /** SANs normalised as `dns:name` (lowercase), `uri:value`, `email:addr`, `ip:addr`. */
  readonly sans: readonly string[];
  /** The principal of this caller over mTLS (built once per certificate). */
  readonly principal: ShieldPrincipal;
  /** What a token presented on this connection is checked against (RFC 8705). */
  readonly verifyContext: VerifyContext;
}

/**
 * The parsed identities of live TLS connections, one per socket (held weakly: it goes with the
 * socket). Owned by the identity decider, so it lives and dies with the module.
 */
export type PeerIdentities = WeakMap<TLSSocket, PeerIdentity>;

/**
 * The identity of the connection's client certificate, only when the TLS layer verified it
 * (`authorized`: the chain verified against the server's `ca`, and CRL, during the handshake).
 * One property read on connections without a verified certificate: this runs on every request.
 */
export function verifiedPeerOf(
  socket: TLSSocket | undefined,
  known: PeerIdentities,
): PeerIdentity | undefined {
  if (socket?.authorized !== true) return undefined;
  const cached = known.get(socket);
  if (cached) return cached;
  const certificate = socket.getPeerX509Certificate();
  if (!certificate) return undefined;
  const identity = identityOf(certificate);
  // One parse per connection, not per request. Only for TLS 1.3 sockets: TLS 1.3 has no
  // renegotiation, so the peer certificate cannot change during the connection's life.
  if (socket.getProtocol() === 'TLSv1.3') known.set(socket, identity);
  return identity;
}

/**
 * True when the client presented a certificate that the TLS layer did not verify (optional mTLS
 * lets such a handshake finish; `authorizationError` says why). Costs one property read on a
 * connection that verified its certificate or on a server that asks for none (Node sets
 * `authorizationError` only when it requested a certificate and verification failed, which
 * includes "no certificate": then the certificate itself is looked at).
 */
export function presentsUnverifiedCertificate(socket: TLSSocket | undefined): boolean {
  if (socket === undefined || socket.authorized === true || socket.authorizationError === undefined) {
    return false;
  }
  return socket.getPeerX509Certificate() !== undefined;
}

/** Builds the {@link PeerIdentity} of a verified certificate. */
export function identityOf(certificate: X509Certificate): PeerIdentity {
  const names = subjectAltNames(certificate);
  const sans = [
    ...names.dns.map((v) => `dns:${v.toLowerCase()}`),
    ...names.uri.map((v) => `uri:${v}`),
    ...names.email.map((v) => `email:${v}`),
    ...names.ip.map((v) => `ip:${v}`),
  ];
  // X509-SVID §2: exactly one URI SAN, a SPIFFE ID with a workload path; else no SPIFFE identity.
  const candidate = spiffeIdOf(certificate);
  const parsed = candidate === undefined ? undefined : parseWorkloadSpiffeId(candidate);
  const fingerprint256 = certificateFingerprint(certificate);
  const spiffeId = parsed ? candidate : undefined;
  const commonName = commonNameOf(certificate.subject);
  const issuer = certificate.issuer.replaceAll('\n', ', ');
  const principal: { -readonly [K in keyof ShieldPrincipal]: ShieldPrincipal[K] } = {
    method: 'mtls',
    subject: spiffeId ?? commonName ?? fingerprint256,
    issuer,
    scopes: NO_SCOPES,
    claims: EMPTY_CLAIMS,
    certificateFingerprint: fingerprint256,
  };
  if (spiffeId !== undefined) principal.spiffeId = spiffeId;
  return Object.freeze({
    certificate,
    fingerprint256,
    spiffeId,
    trustDomain: parsed?.trustDomain,
    commonName,
    issuer,
    sans: Object.freeze(sans),
    principal: Object.freeze(principal),
    // RFC 8705 §3.1: x5t#S256 is the base64url form of the same SHA-256.
    verifyContext: Object.freeze({
      clientCertificate: certificate,
      clientCertificateThumbprint: Buffer.from(fingerprint256, 'hex').toString('base64url'),
    }),
  });
}

const EMPTY_CLAIMS: Readonly<Record<string, unknown>> = Object.freeze({});
const NO_SCOPES: readonly string[] = Object.freeze([]);

function commonNameOf(subject: string): string | undefined {
  for (const line of subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}
