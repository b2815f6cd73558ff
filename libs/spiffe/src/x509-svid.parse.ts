import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { ShieldError } from '@inference-shield/core/internal';
import { certificateFingerprint, parseSpiffeId, spiffeIdOf } from '@inference-shield/core/internal';
import { certificatePem, splitDerSequences } from './der.js';

/** The X.509 material of a workload: its SVID, its private key and the trust bundles, as PEM. */
export interface X509SvidMaterial {
  /** The SVID's SPIFFE ID, e.g. `spiffe://example.org/inference`. */
  readonly spiffeId: string;
  /** Its trust domain, e.g. `example.org`. */
  readonly trustDomain: string;
  /** The leaf certificate alone, PEM. */
  readonly certPem: string;
  /** The leaf followed by its intermediates, PEM: what a TLS peer is sent. */
  readonly chainPem: string;
  /** The SVID's private key, PKCS#8 PEM. Never log it. */
  readonly keyPem: string;
  /**
   * Every trusted CA certificate, PEM: the workload's own trust domain first, then the federated
   * ones. What peers' certificates are checked against (`ca` of a TLS context).
   */
  readonly bundlesPem: string;
  /** The CA certificates of each trust domain (name without `spiffe://`), PEM. */
  readonly bundles: ReadonlyMap<string, string>;
  /** The operator's hint for this SVID, when the agent gave one. */
  readonly hint: string | undefined;
  readonly notBefore: Date;
  /** The earliest `notAfter` of the leaf and its intermediates: when this material stops working. */
  readonly expiresAt: Date;
  /** SHA-256 of the leaf DER, lowercase hex. */
  readonly fingerprint256: string;
}

/** The fields of `X509SVID` (workload.proto) this client reads, as proto-loader decodes them. */
export interface X509SvidMessage {
  readonly spiffe_id?: unknown;
  readonly x509_svid?: unknown;
  readonly x509_svid_key?: unknown;
  readonly bundle?: unknown;
  readonly hint?: unknown;
}

/** The fields of `X509SVIDResponse` this client reads. */
export interface X509SvidResponseMessage {
  readonly svids?: unknown;
  readonly federated_bundles?: unknown;
}

/** An agent entitles a workload to a few identities, not hundreds. */
const MAX_SVIDS = 32;
/** A chain is a leaf and a few intermediates. */
const MAX_CHAIN_CERTIFICATES = 8;
/** CA certificates of one trust domain (old and new CAs overlap during a rotation). */
const MAX_BUNDLE_CERTIFICATES = 64;
const MAX_FEDERATED_BUNDLES = 64;
const MAX_HINT_LENGTH = 256;

function refuse(message: string, cause?: unknown): never {
  throw new ShieldError('ERR_SPIFFE_SVID_INVALID', {
    message: `X.509-SVID update refused: ${message}`,
    cause,
  });
}

function bytesOf(value: unknown, what: string): Buffer {
  if (!(value instanceof Uint8Array) || value.length === 0) refuse(`${what} is missing`);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function certificates(data: Buffer, max: number, what: string): X509Certificate[] {
  const ders = splitDerSequences(data, max);
  if (ders === undefined || ders.length === 0) {
    refuse(`${what} is not a sequence of at most ${max} DER certificates`);
  }
  return ders.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch (err) {
      return refuse(`certificate #${i + 1} of ${what} cannot be parsed`, err);
    }
  });
}

/** Node prints validity as `Jan  1 00:00:00 2026 GMT`; Date reads that form. */
function validity(cert: X509Certificate, what: string, now: number): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    refuse(`${what} has an unreadable validity period`);
  }
  if (now > notAfter.getTime()) refuse(`${what} expired on ${notAfter.toISOString()}`);
  if (now < notBefore.getTime()) refuse(`${what} is not valid before ${notBefore.toISOString()}`);
  return { notBefore, notAfter };
}

/** The trust domain a bundle map key names: `spiffe://example.org` or `example.org`. */
function trustDomainOfKey(key: string): string | undefined {
  const id = key.startsWith('spiffe://') ? key : `spiffe://${key}`;
  const parsed = parseSpiffeId(id);
  return parsed !== undefined && parsed.path === '' ? parsed.trustDomain : undefined;
}

/** A bundle: CA certificates only (an end-entity certificate in a trust store would be trusted). */
function bundleOf(data: Buffer, trustDomain: string): X509Certificate[] {
  const cas = certificates(data, MAX_BUNDLE_CERTIFICATES, `the bundle of ${trustDomain}`);
  cas.forEach((ca, i) => {
    if (!ca.ca) refuse(`certificate #${i + 1} of the bundle of ${trustDomain} is not a CA certificate`);
  });
  return cas;
}

/**
 * Mozilla's "intermediate" key sizes, as the file loader of `@inference-shield/core` checks them:
 * RSA of at least 2048 bits, ECDSA on P-256/384/521, Ed25519/Ed448.
 */
function strongEnough(key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') return (details.modulusLength ?? 0) >= 2048;
  if (type === 'ec') return ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '');
  return type === 'ed25519' || type === 'ed448';
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/** Options of {@link parseX509SvidResponse}. */
export interface ParseX509SvidOptions {
  /** Take the SVID with this SPIFFE ID; default: the first (the spec's default identity). */
  readonly spiffeId?: string | undefined;
  /** The clock (ms since the epoch). */
  readonly now: number;
}

/**
 * Check an `X509SVIDResponse` and turn the chosen SVID into PEM material (X509-SVID §4, §5,
 * Workload API §5.1): the chain is DER certificates, leaf first; the leaf carries exactly one URI
 * SAN, the SPIFFE ID the agent announced, and is not a CA; every certificate is within its validity
 * period; the key is an unencrypted PKCS#8 key that matches the leaf and is strong enough; the
 * chain leads to a CA of the SVID's own trust domain bundle; every bundle holds CA certificates
 * only. Anything else throws `ERR_SPIFFE_SVID_INVALID`, whose message names the problem and never
 * quotes key material. CRLs in the response are not used (SPIRE sends none).
 */
export function parseX509SvidResponse(
  response: X509SvidResponseMessage,
  options: ParseX509SvidOptions,
): X509SvidMaterial {
  const svids = response.svids;
  if (!Array.isArray(svids) || svids.length === 0) refuse('the response holds no SVID');
  if (svids.length > MAX_SVIDS) refuse(`the response holds ${svids.length} SVIDs, more than ${MAX_SVIDS}`);
  const chosen = (svids as X509SvidMessage[]).find((s) =>
    options.spiffeId === undefined ? true : s.spiffe_id === options.spiffeId,
  );
  if (chosen === undefined) refuse(`the response holds no SVID for ${options.spiffeId ?? '?'}`);

  const spiffeId = chosen.spiffe_id;
  const parsedId = typeof spiffeId === 'string' ? parseSpiffeId(spiffeId) : undefined;
  if (typeof spiffeId !== 'string' || parsedId === undefined || parsedId.path === '') {
    refuse('the SVID does not name a valid workload SPIFFE ID');
  }
  const trustDomain = parsedId.trustDomain;
  const chain = certificates(
    bytesOf(chosen.x509_svid, 'the certificate chain'),
    MAX_CHAIN_CERTIFICATES,
    `the SVID of ${spiffeId}`,
  );
  const [leaf, ...intermediates] = chain;
  if (leaf === undefined) refuse('the certificate chain is empty');
  // X509-SVID §2: exactly one URI SAN, the SPIFFE ID; §4.1: a leaf SVID is not a CA.
  if (spiffeIdOf(leaf) !== spiffeId) {
    refuse(`the leaf certificate does not carry exactly one URI SAN equal to ${spiffeId}`);
  }
  if (leaf.ca) refuse(`the leaf certificate of ${spiffeId} is a CA certificate`);
  intermediates.forEach((c, i) => {
    if (!c.ca) refuse(`chain certificate #${i + 2} of ${spiffeId} is not a CA certificate`);
  });

  const now = options.now;
  const { notBefore, notAfter } = validity(leaf, `the SVID of ${spiffeId}`, now);
  let expiresAt = notAfter.getTime();
  intermediates.forEach((c, i) => {
    expiresAt = Math.min(
      expiresAt,
      validity(c, `chain certificate #${i + 2} of ${spiffeId}`, now).notAfter.getTime(),
    );
  });

  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: bytesOf(chosen.x509_svid_key, 'the private key'),
      format: 'der',
      type: 'pkcs8',
    });
  } catch (err) {
    // The library message may quote its input: kept as the cause only.
    return refuse(`the private key of ${spiffeId} is not an unencrypted PKCS#8 key`, err);
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(key);
  } catch {
    matches = false;
  }
  if (!matches) refuse(`the private key does not match the SVID of ${spiffeId}`);
  if (!strongEnough(leaf.publicKey)) refuse(`the SVID of ${spiffeId} has a weak or unsupported key`);

  const bundles = new Map<string, X509Certificate[]>();
  bundles.set(trustDomain, bundleOf(bytesOf(chosen.bundle, `the bundle of ${trustDomain}`), trustDomain));
  const federated = response.federated_bundles;
  if (federated !== undefined && federated !== null) {
    if (typeof federated !== 'object') refuse('the federated bundles are malformed');
    const entries = Object.entries(federated as Record<string, unknown>);
    if (entries.length > MAX_FEDERATED_BUNDLES)
      refuse(`more than ${MAX_FEDERATED_BUNDLES} federated bundles`);
    for (const [name, data] of entries) {
      const td = trustDomainOfKey(name);
      if (td === undefined) refuse(`a federated bundle is keyed by an invalid trust domain ID`);
      // The workload's own trust domain comes from its SVID, never from a federation entry.
      if (bundles.has(td)) refuse(`the federated bundles repeat the trust domain ${td}`);
      bundles.set(td, bundleOf(bytesOf(data, `the bundle of ${td}`), td));
    }
  }

  const last = chain[chain.length - 1] ?? leaf;
  const own = bundles.get(trustDomain) ?? [];
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i];
    const parent = chain[i + 1];
    if (child === undefined || parent === undefined || !issuedBy(child, parent)) {
      refuse(`chain certificate #${i + 1} of ${spiffeId} is not signed by the next one`);
    }
  }
  if (!own.some((ca) => ca.raw.equals(last.raw) || issuedBy(last, ca))) {
    refuse(`the SVID of ${spiffeId} does not chain to a CA of the ${trustDomain} bundle`);
  }

  const chainPem = chain.map((c) => certificatePem(c.raw)).join('');
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  try {
    // OpenSSL's own checks (its security level) at update time, not at the first handshake.
    createSecureContext({ cert: chainPem, key: keyPem });
  } catch (err) {
    refuse(`OpenSSL refuses the SVID of ${spiffeId} with its key`, err);
  }
  const bundlePems = new Map<string, string>();
  for (const [td, cas] of bundles) bundlePems.set(td, cas.map((c) => certificatePem(c.raw)).join(''));
  const hint =
    typeof chosen.hint === 'string' && chosen.hint.length > 0
      ? chosen.hint.slice(0, MAX_HINT_LENGTH)
      : undefined;
  return Object.freeze({
    spiffeId,
    trustDomain,
    certPem: certificatePem(leaf.raw),
    chainPem,
    keyPem,
    bundlesPem: [...bundlePems.values()].join(''),
    bundles: bundlePems,
    hint,
    notBefore,
    expiresAt: new Date(expiresAt),
    fingerprint256: certificateFingerprint(leaf),
  });
}
