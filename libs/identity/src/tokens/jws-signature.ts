import {
  constants,
  createHmac,
  createSecretKey,
  verify as cryptoVerify,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { ShieldError } from '@inference-shield/core/internal';
import {
  decodeBase64urlSegment,
  inspectCompactJws,
  type InspectedJws,
  type JwsHeader,
} from './jws-inspect.js';
import type { IssuerKeySet, ResolvedKey } from './issuer-key-set.js';

/**
 * The signature stage, on `node:crypto` directly: one synchronous OpenSSL call per token, with
 * the key converted once (when the key set first hands it out) and the algorithm's parameters
 * fixed with it. WebCrypto (what jose verifies with) queues each check as a job on the thread
 * pool and wraps it in promises: two to three times the CPU of the check itself (#18, target 2).
 * jose still imports and selects the keys (issuer-key-set.ts); this file only checks signatures.
 */

/** Checks a signature over a JWS signing input with one key, for one algorithm. Never throws. */
export type SignatureCheck = (signingInput: Buffer, signature: Buffer) => boolean;

/** The outcome of the signature stage: the header, the signed payload bytes, and the key used. */
export interface VerifiedSignature {
  readonly header: JwsHeader;
  readonly payload: Uint8Array;
  readonly key: ResolvedKey;
}

const HASH_OF: Readonly<Record<string, string>> = {
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512',
  ES256: 'sha256',
  ES384: 'sha384',
  ES512: 'sha512',
  HS256: 'sha256',
  HS384: 'sha384',
  HS512: 'sha512',
};
/** RFC 7518 §3.4: the curve of each ECDSA algorithm (OpenSSL's name) and its R || S length. */
const EC_OF: Readonly<Record<string, readonly [curve: string, signatureBytes: number]>> = {
  ES256: ['prime256v1', 64],
  ES384: ['secp384r1', 96],
  ES512: ['secp521r1', 132],
};
/** RFC 7518 §3.5: PSS with MGF1 on the same hash, salt as long as the hash. */
const PSS_SALT: Readonly<Record<string, number>> = { PS256: 32, PS384: 48, PS512: 64 };
const HMAC_BYTES: Readonly<Record<string, number>> = { HS256: 32, HS384: 48, HS512: 64 };
const MIN_RSA_BITS = 2048;

function unusable(detail: string): ShieldError {
  return new ShieldError('ERR_TOKEN_KEY_UNUSABLE', { detail });
}

/**
 * Prepares the check of `alg` signatures with `key`: a public `KeyObject` of the algorithm's type
 * (RSA of at least 2048 bits for RS and PS, the algorithm's own curve for ES, Ed25519 for EdDSA),
 * or the issuer's shared secret for HS. A key of another type is `ERR_TOKEN_KEY_UNUSABLE` here,
 * before any signature is looked at. The check refuses a signature of the wrong length before
 * calling OpenSSL (RFC 7518: an ECDSA signature is exactly R || S; RFC 8017 §8.2.2: an RSA
 * signature is exactly as long as the modulus) and compares MACs in constant time.
 */
export function signatureCheckFor(alg: string, key: KeyObject | Uint8Array): SignatureCheck {
  const hash = HASH_OF[alg];
  if (alg === 'HS256' || alg === 'HS384' || alg === 'HS512') {
    if (!(key instanceof Uint8Array) || key.length === 0) throw unusable('no shared secret');
    const length = HMAC_BYTES[alg];
    if (hash === undefined || length === undefined) throw unusable(`algorithm ${alg}`);
    const secret = createSecretKey(key);
    const digest = hash;
    return (input, signature) =>
      signature.length === length &&
      timingSafeEqual(createHmac(digest, secret).update(input).digest(), signature);
  }
  if (key instanceof Uint8Array || key.type !== 'public') throw unusable('not a public key');
  const type = key.asymmetricKeyType;
  if (alg === 'EdDSA' || alg === 'Ed25519') {
    if (type !== 'ed25519') throw unusable(`${alg} needs an Ed25519 key`);
    return (input, signature) => signature.length === 64 && safely(null, input, key, signature);
  }
  if (hash === undefined) throw unusable(`algorithm ${alg}`);
  const ec = EC_OF[alg];
  if (ec !== undefined) {
    const [curve, length] = ec;
    if (type !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== curve) {
      throw unusable(`${alg} needs a key on its own curve`);
    }
    const options = { key, dsaEncoding: 'ieee-p1363' as const };
    return (input, signature) => signature.length === length && safely(hash, input, options, signature);
  }
  if (type !== 'rsa') throw unusable(`${alg} needs an RSA key`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) throw unusable(`RSA key under ${MIN_RSA_BITS} bits`);
  const length = Math.ceil(bits / 8);
  const salt = PSS_SALT[alg];
  const options =
    salt === undefined ? key : { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: salt };
  return (input, signature) => signature.length === length && safely(hash, input, options, signature);
}

/** `crypto.verify`, where OpenSSL refusing the input is a bad signature, never an exception. */
function safely(
  hash: string | null,
  input: Buffer,
  key: Parameters<typeof cryptoVerify>[2],
  signature: Buffer,
): boolean {
  try {
    return cryptoVerify(hash, input, key, signature);
  } catch {
    return false;
  }
}

/** Refuses an algorithm the issuer does not allow (before any key lookup or crypto). */
export function assertAlgorithmAllowed(jws: InspectedJws, algorithms: readonly string[]): void {
  if (!algorithms.includes(jws.header.alg)) throw new ShieldError('ERR_TOKEN_ALG_NOT_ALLOWED');
}

/**
 * Checks the signature of an inspected token with the key its header resolved to:
 * `ERR_TOKEN_SIGNATURE_INVALID` if it does not verify. The segments were checked as canonical
 * base64url by {@link inspectCompactJws}.
 */
export function assertSignature(jws: InspectedJws, key: ResolvedKey): void {
  const input = Buffer.from(jws.signingInput, 'latin1');
  const signature = Buffer.from(jws.signatureSegment, 'base64url');
  if (!key.check(input, signature)) throw new ShieldError('ERR_TOKEN_SIGNATURE_INVALID');
}

/**
 * The signature stage of our verification path, without the claims stage: size cap, compact
 * form, strict header decode and policy, the issuer's algorithm list, key lookup in that one key
 * set, then {@link assertSignature} (the same steps `TokenVerifier` runs before its claims
 * checks). Used on its own for test vectors whose payload is not a claims set (Wycheproof).
 * Throws ShieldError.
 */
export async function verifyJwsSignature(
  token: string,
  keySet: IssuerKeySet,
  policy: { readonly algorithms: readonly string[]; readonly maxTokenBytes: number },
): Promise<VerifiedSignature> {
  const jws = inspectCompactJws(token, policy.maxTokenBytes);
  assertAlgorithmAllowed(jws, policy.algorithms);
  const key = await keySet.resolveKey(jws.header);
  assertSignature(jws, key);
  return { header: jws.header, payload: decodeBase64urlSegment(jws.payloadSegment), key };
}
