import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { certificateFingerprint, spiffeIdOf, subjectAltNames, tlsSocketOf } from '@inference-shield/core';
import { parseWorkloadSpiffeId } from './spiffe-id.js';

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
}

/**
 * `none`: no client certificate; `unverified`: a certificate the TLS layer did not verify (never
 * used for anything); `verified`: a certificate chain the server's CA verified during the handshake.
 */
export type PeerState =
  | { readonly state: 'none' }
  | { readonly state: 'unverified' }
  | { readonly state: 'verified'; readonly identity: PeerIdentity };

const NONE: PeerState = Object.freeze({ state: 'none' });
const UNVERIFIED: PeerState = Object.freeze({ state: 'unverified' });

// One parse per connection, not per request. Only for TLS 1.3 sockets: TLS 1.3 has no
// renegotiation, so the peer certificate cannot change during the connection's life.
const identities = new WeakMap<TLSSocket, PeerIdentity>();

/**
 * The identity of the connection's client certificate, only when the TLS layer verified it
 * (`authorized`: the chain verified against the server's `ca`, and CRL, during the handshake).
 * One property read on connections without a verified certificate: this runs on every request.
 */
export function verifiedPeerOf(socket: TLSSocket | undefined): PeerIdentity | undefined {
  if (socket?.authorized !== true) return undefined;
  const cached = identities.get(socket);
  if (cached) return cached;
  const certificate = socket.getPeerX509Certificate();
  if (!certificate) return undefined;
  const identity = identityOf(certificate);
  if (socket.getProtocol() === 'TLSv1.3') identities.set(socket, identity);
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

/**
 * The client certificate of the request, read from the TLS socket only. Headers such as
 * `X-Client-Cert` are never looked at: anyone can send them.
 */
export function peerStateOf(request: object): PeerState {
  const socket = tlsSocketOf(request);
  const identity = verifiedPeerOf(socket);
  if (identity) return { state: 'verified', identity };
  return socket?.getPeerX509Certificate() ? UNVERIFIED : NONE;
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
  return Object.freeze({
    certificate,
    fingerprint256: certificateFingerprint(certificate),
    spiffeId: parsed ? candidate : undefined,
    trustDomain: parsed?.trustDomain,
    commonName: commonNameOf(certificate.subject),
    issuer: certificate.issuer.replaceAll('\n', ', '),
    sans: Object.freeze(sans),
  });
}

function commonNameOf(subject: string): string | undefined {
  for (const line of subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}
