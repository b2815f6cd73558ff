import { createHash, timingSafeEqual } from 'node:crypto';
import { ShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
import { calculateJwkThumbprint, compactVerify, importJWK, type JWK } from 'jose';
import { assertBase64urlSegment } from '../tokens/jws-inspect.js';
import { parseStrictJson, StrictJsonError } from '../tokens/strict-json.js';
import { htuMatches, requestPathOf } from './dpop-htu.js';
import type { ResolvedDpopOptions } from './dpop-options.interface.js';

/** The request a proof must have been made for, and the token it must be bound to. */
export interface DpopRequestFacts {
  /** The request method, as received (`htm` is compared case-sensitively, RFC 9110 §9.1). */
  readonly method: string;
  /**
   * The request-target as received, in origin form (`/v1/models/x/infer?stream=1`). Its origin
   * is the configured one (`dpop.origin`), never the `Host` header.
   */
  readonly url: string;
  /** The access token the request carries (`ath` is its SHA-256). */
  readonly accessToken: string;
  /** The token's `cnf.jkt`: the proof key's thumbprint must equal it. */
  readonly expectedJkt: string;
  /** Nonces accepted now (current and previous); absent when the server requires none. */
  readonly nonces?: { accepts(nonce: string, nowMs: number): boolean };
}

/** A proof that passed every check except the replay check (the caller's, with its store). */
export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key, base64url (equals the token's `cnf.jkt`). */
  readonly thumbprint: string;
  readonly jti: string;
  /** `iat`, epoch seconds. */
  readonly iat: number;
}

const TYP = 'dpop+jwt';
/** Header parameters a proof must not carry: its only key is the `jwk`, nothing is fetched. */
const REFUSED_HEADER = ['crit', 'b64', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'enc', 'zip', 'cty'];
/** RFC 7517/7518 private key members: a proof header carries a public key only. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];
/** The public members kept for import, per key type (RFC 7518 §6, RFC 8037). */
const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
  RSA: ['kty', 'n', 'e'],
};
const MAX_JTI_LENGTH = 256;
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function refuse(code: ShieldErrorCode, detail: string, cause?: unknown): ShieldError {
  return new ShieldError(code, { detail: `DPoP ${detail}`, ...(cause !== undefined ? { cause } : {}) });
}

/** Strict base64url, UTF-8, JSON without duplicate members, an object: else ERR_DPOP_PROOF_INVALID. */
function decodeObject(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    assertBase64urlSegment(segment);
    value = parseStrictJson(utf8.decode(Buffer.from(segment, 'base64url')));
  } catch (err) {
    const dup = err instanceof StrictJsonError && err.kind === 'duplicate';
    throw refuse('ERR_DPOP_PROOF_INVALID', dup ? `${what} has duplicate members` : `${what} malformed`, err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw refuse('ERR_DPOP_PROOF_INVALID', `${what} not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** The public JWK of the header: a known key type, no private member, only public members kept. */
function publicJwkOf(value: unknown): JWK {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw refuse('ERR_DPOP_PROOF_INVALID', 'header jwk missing');
  }
  const jwk = value as Record<string, unknown>;
  // A private key in a proof is a client bug that leaked its key, or a probe: refuse, never import.
  for (const member of PRIVATE_JWK_MEMBERS) {
    if (Object.hasOwn(jwk, member)) throw refuse('ERR_DPOP_PROOF_INVALID', 'header jwk is not a public key');
  }
  const kty = jwk['kty'];
  const members =
    typeof kty === 'string' && Object.hasOwn(PUBLIC_MEMBERS, kty) ? PUBLIC_MEMBERS[kty] : undefined;
  if (members === undefined) throw refuse('ERR_DPOP_PROOF_INVALID', 'header jwk kty');
  const out: Record<string, string> = {};
  for (const m of members) {
    const v = jwk[m];
    if (typeof v !== 'string' || v.length === 0) throw refuse('ERR_DPOP_PROOF_INVALID', `header jwk ${m}`);
    out[m] = v;
  }
  return out as JWK;
}

/** RFC 9449 §4.2 `ath`: base64url SHA-256 of the ASCII access token. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verifies one DPoP proof (RFC 9449 §4.3) for one request, in this order: size (before any
 * parsing), compact form, strict header (`typ: dpop+jwt`, an allowed asymmetric `alg`, a public
 * `jwk` and no other key source), the signature with that key, strict claims (`jti`, `htm`,
 * `htu` against the configured origin, `iat` within the window, `ath` of this token), the key's
 * thumbprint against the token's `cnf.jkt`, then the server nonce when one is required. Pure:
 * it records nothing; the replay check of `jti` is the caller's (see `DpopVerifier`).
 *
 * Throws `ShieldError`: `ERR_DPOP_PROOF_INVALID`, `_REQUEST_MISMATCH`, `_EXPIRED`,
 * `ERR_DPOP_BINDING_MISMATCH`, `ERR_DPOP_NONCE_REQUIRED`.
 *
 * @example
 * const { thumbprint, jti } = await verifyDpopProof(req.headers.dpop, { method: 'POST', url: req.originalUrl, accessToken, expectedJkt }, options, Date.now);
 */
export async function verifyDpopProof(
  proofJws: string,
  request: DpopRequestFacts,
  options: ResolvedDpopOptions,
  clock: () => number,
): Promise<VerifiedDpopProof> {
  // Size first: nothing reads a proof before this comparison.
  if (typeof proofJws !== 'string' || proofJws.length === 0) throw refuse('ERR_DPOP_PROOF_INVALID', 'empty');
  if (proofJws.length > options.maxProofBytes) throw refuse('ERR_DPOP_PROOF_INVALID', 'too large');
  const parts = proofJws.split('.');
  const [headerSegment, payloadSegment, signatureSegment] = parts;
  if (
    parts.length !== 3 ||
    headerSegment === undefined ||
    payloadSegment === undefined ||
    signatureSegment === undefined ||
    headerSegment.length === 0 ||
    payloadSegment.length === 0 ||
    signatureSegment.length === 0
  ) {
    throw refuse('ERR_DPOP_PROOF_INVALID', 'not a compact JWS');
  }
  try {
    assertBase64urlSegment(signatureSegment);
  } catch (err) {
    throw refuse('ERR_DPOP_PROOF_INVALID', 'signature encoding', err);
  }

  const header = decodeObject(headerSegment, 'header');
  // RFC 9449 §4.2: explicit typing keeps other JWTs (an ID token, an access token) out.
  if (header['typ'] !== TYP) throw refuse('ERR_DPOP_PROOF_INVALID', 'typ');
  const alg = header['alg'];
  if (typeof alg !== 'string' || !options.algorithms.includes(alg)) {
    throw refuse('ERR_DPOP_PROOF_INVALID', 'alg not allowed');
  }
  for (const name of REFUSED_HEADER) {
    if (Object.hasOwn(header, name)) throw refuse('ERR_DPOP_PROOF_INVALID', `header "${name}"`);
  }
  const jwk = publicJwkOf(header['jwk']);

  let payload: Uint8Array;
  try {
    const key = await importJWK(jwk, alg);
    // importJWK of a public JWK gives a public key; anything else is refused all the same.
    if (key instanceof Uint8Array || key.type !== 'public') throw new TypeError('not a public key');
    ({ payload } = await compactVerify(proofJws, key, { algorithms: [alg], crit: {} }));
  } catch (err) {
    throw refuse('ERR_DPOP_PROOF_INVALID', 'signature or key', err);
  }
  // The bytes jose verified are those of the payload segment: decode them strictly ourselves.
  if (payload.length === 0) throw refuse('ERR_DPOP_PROOF_INVALID', 'claims empty');
  const claims = decodeObject(payloadSegment, 'claims');

  const jti = claims['jti'];
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
    throw refuse('ERR_DPOP_PROOF_INVALID', 'jti');
  }
  const htm = claims['htm'];
  const htu = claims['htu'];
  if (typeof htm !== 'string' || typeof htu !== 'string')
    throw refuse('ERR_DPOP_PROOF_INVALID', 'htm or htu');
  const iat = claims['iat'];
  if (typeof iat !== 'number' || !Number.isSafeInteger(iat)) throw refuse('ERR_DPOP_PROOF_INVALID', 'iat');
  const ath = claims['ath'];
  if (typeof ath !== 'string') throw refuse('ERR_DPOP_PROOF_INVALID', 'ath');

  if (htm !== request.method) throw refuse('ERR_DPOP_PROOF_REQUEST_MISMATCH', 'htm');
  const path = requestPathOf(request.url);
  if (path === undefined || !htuMatches(htu, path, options.origins)) {
    throw refuse('ERR_DPOP_PROOF_REQUEST_MISMATCH', 'htu');
  }
  const nowMs = clock();
  const nowS = Math.floor(nowMs / 1000);
  const tolerance = options.clockToleranceSeconds;
  if (iat > nowS + tolerance) throw refuse('ERR_DPOP_PROOF_EXPIRED', 'iat in the future');
  if (iat < nowS - options.proofMaxAgeSeconds - tolerance)
    throw refuse('ERR_DPOP_PROOF_EXPIRED', 'iat too old');

  // RFC 9449 §4.3 steps 11-12: the proof covers this very token, and its key is the token's.
  if (!sameText(ath, accessTokenHash(request.accessToken))) throw refuse('ERR_DPOP_BINDING_MISMATCH', 'ath');
  let thumbprint: string;
  try {
    thumbprint = await calculateJwkThumbprint(jwk, 'sha256');
  } catch (err) {
    throw refuse('ERR_DPOP_PROOF_INVALID', 'jwk thumbprint', err);
  }
  if (!THUMBPRINT.test(request.expectedJkt) || !sameText(thumbprint, request.expectedJkt)) {
    throw refuse('ERR_DPOP_BINDING_MISMATCH', 'cnf.jkt');
  }

  // RFC 9449 §8-9: checked last, so that a client answering `use_dpop_nonce` only lacked the nonce.
  if (request.nonces !== undefined) {
    const nonce = claims['nonce'];
    if (typeof nonce !== 'string' || nonce.length > 256 || !request.nonces.accepts(nonce, nowMs)) {
      throw refuse('ERR_DPOP_NONCE_REQUIRED', 'nonce missing or stale');
    }
  }
  return { thumbprint, jti, iat };
}
