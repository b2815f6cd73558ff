/**
 * The one TLS suite policy of Inference Shield, for inbound servers (`@inference-shield/https`, the
 * dev tools) and outbound clients (`@inference-shield/upstream`) alike.
 */
import { createSecureContext } from 'node:tls';

/** TLS 1.2 cipher suites we may offer: ECDHE key exchange with an AEAD cipher only. */
export type Tls12Cipher =
  | 'ECDHE-ECDSA-AES128-GCM-SHA256'
  | 'ECDHE-RSA-AES128-GCM-SHA256'
  | 'ECDHE-ECDSA-AES256-GCM-SHA384'
  | 'ECDHE-RSA-AES256-GCM-SHA384'
  | 'ECDHE-ECDSA-CHACHA20-POLY1305'
  | 'ECDHE-RSA-CHACHA20-POLY1305';

/**
 * Mozilla "intermediate" TLS 1.2 suites (server-side TLS guidelines v5.7): ECDHE only (forward
 * secrecy), AEAD only (no CBC, so no Lucky13/POODLE-style padding oracles, no SHA-1 MAC), no CCM.
 * Node's default list offers 21 suites, static-RSA and CBC ones included.
 */
export const TLS12_CIPHERS: readonly Tls12Cipher[] = Object.freeze([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const);

/**
 * The three TLS 1.3 suites of RFC 8446 §9.1 that OpenSSL enables: all AEAD. Named so the list is
 * explicit. AES-128-GCM comes first (OpenSSL puts AES-256 first): the same security margin for TLS
 * (128-bit), and measurably cheaper per request (bench/upstream).
 */
export const TLS13_CIPHERS: readonly string[] = Object.freeze([
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
]);

/**
 * Classical key-exchange groups: X25519 first (RFC 7748), then the NIST curves most clients have.
 * In force where OpenSSL offers no post-quantum group (Node 20, OpenSSL 3.0): see {@link keyExchangeGroups}.
 */
export const ECDH_CURVES = 'X25519:P-256:P-384';

/** The hybrid post-quantum group: ML-KEM-768 with X25519 (draft-ietf-tls-ecdhe-mlkem), OpenSSL 3.5+. */
export const PQ_HYBRID_GROUP = 'X25519MLKEM768';

/**
 * Groups where OpenSSL offers {@link PQ_HYBRID_GROUP} (Node 24/26, OpenSSL 3.5), in OpenSSL 3.5's
 * group-list syntax (`SSL_CTX_set1_groups_list`): `/` ends a preference tuple, so a server picks the
 * hybrid whenever the client supports it, even at the cost of a HelloRetryRequest (a recorded
 * session stays safe from a later quantum computer: "harvest now, decrypt later"); among the
 * classical groups it takes a key share the client already sent. `*` marks the groups a client sends
 * key shares for: the hybrid and X25519, so a classical-only server answers without a
 * HelloRetryRequest (OpenSSL 3.5's own default does the same). A server ignores the `*`.
 * TLS 1.2 has no hybrid: its handshakes use the classical groups of the list.
 */
export const PQ_ECDH_CURVES = `*${PQ_HYBRID_GROUP}/*X25519:P-256:P-384`;

/** The key-exchange groups in force for this process, decided once (see {@link keyExchangeGroups}). */
export interface KeyExchangeGroups {
  /** The `ecdhCurve` value for `tls.createSecureContext`, `tls.connect` and `https.createServer`. */
  readonly ecdhCurve: string;
  /** The groups in order of preference, plain names (`X25519MLKEM768`, `X25519`, …). */
  readonly names: readonly string[];
  /** True when the hybrid post-quantum group is offered. */
  readonly postQuantum: boolean;
  /** The OpenSSL version Node runs with (`process.versions.openssl`). */
  readonly openssl: string;
}

/** The plain group names of an OpenSSL group list, in order (`*`, `?`, `/` and spaces dropped). */
export function groupNames(list: string): string[] {
  return list
    .split(/[:/]/)
    .map((g) => g.trim().replace(/^[*?]+/, ''))
    .filter((g) => g !== '');
}

function groups(ecdhCurve: string, postQuantum: boolean, openssl: string): KeyExchangeGroups {
  return Object.freeze({ ecdhCurve, names: Object.freeze(groupNames(ecdhCurve)), postQuantum, openssl });
}

/** True for an OpenSSL version string of 3.5 or later (the first with ML-KEM and the `*`/`/` syntax). */
export function opensslOffersHybridGroups(openssl: string): boolean {
  const m = /^(\d+)\.(\d+)\./.exec(openssl);
  if (m === null) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 3 || (major === 3 && minor >= 5);
}

/**
 * Decide the groups: {@link PQ_ECDH_CURVES} when OpenSSL accepts it, else {@link ECDH_CURVES}.
 * `probe` builds a secure context with the given `ecdhCurve` and throws when OpenSSL refuses a group;
 * a test passes its own. The probe runs only on OpenSSL 3.5 or later: a refused group list leaves an
 * entry on OpenSSL's thread error queue that Node does not clear, and on Node 20 (OpenSSL 3.0) the
 * next `crypto.createPrivateKey` of the process then failed with "passed invalid argument". Older
 * versions are known not to have the group, so they are not asked.
 */
export function detectKeyExchangeGroups(
  probe: (ecdhCurve: string) => unknown,
  openssl: string = process.versions.openssl ?? 'unknown',
): KeyExchangeGroups {
  if (!opensslOffersHybridGroups(openssl)) return groups(ECDH_CURVES, false, openssl);
  try {
    probe(PQ_ECDH_CURVES);
    return groups(PQ_ECDH_CURVES, true, openssl);
  } catch {
    return groups(ECDH_CURVES, false, openssl);
  }
}

let inForce: KeyExchangeGroups | undefined;

/**
 * The key-exchange groups of every server and client of Inference Shield: the hybrid post-quantum
 * group first where this runtime's OpenSSL offers it, else the classical groups. Probed once per
 * process (one throwaway secure context, a fraction of a millisecond), then cached: never per
 * connection.
 */
export function keyExchangeGroups(): KeyExchangeGroups {
  inForce ??= detectKeyExchangeGroups((ecdhCurve) => createSecureContext({ ecdhCurve }));
  return inForce;
}

/** One line for a start-up log: which groups are in force and why. */
export function describeKeyExchangeGroups(g: KeyExchangeGroups = keyExchangeGroups()): string {
  const list = g.names.join(', ');
  return g.postQuantum
    ? `key exchange groups ${list} (post-quantum hybrid ${PQ_HYBRID_GROUP} first; OpenSSL ${g.openssl})`
    : `key exchange groups ${list} (classical only: OpenSSL ${g.openssl} offers no ${PQ_HYBRID_GROUP}; Node 24+ with OpenSSL 3.5 does)`;
}

/** The `ciphers` string for Node: the TLS 1.3 suites (prefix `TLS_`), then the given TLS 1.2 suites. */
export function cipherString(tls12: readonly Tls12Cipher[] = TLS12_CIPHERS): string {
  return [...TLS13_CIPHERS, ...tls12].join(':');
}
