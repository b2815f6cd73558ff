import { ShieldError } from '@inference-shield/core/internal';
import { compactVerify } from 'jose';
import { translateJoseError } from './jose-error.mapping.js';
import { inspectCompactJws, type InspectedJws, type JwsHeader } from './jws-inspect.js';
import type { IssuerKeySet, ResolvedKey } from './issuer-key-set.js';

/** The outcome of the signature stage: the header, the signed payload bytes, and the key used. */
export interface VerifiedSignature {
  readonly header: JwsHeader;
  readonly payload: Uint8Array;
  readonly key: ResolvedKey;
}

/** Refuses an algorithm the issuer does not allow (before any key lookup or crypto). */
export function assertAlgorithmAllowed(jws: InspectedJws, algorithms: readonly string[]): void {
  if (!algorithms.includes(jws.header.alg)) throw new ShieldError('ERR_TOKEN_ALG_NOT_ALLOWED');
}

/**
 * The signature stage of our verification path, without the claims stage: size cap, compact
 * form, strict header decode and policy, the issuer's algorithm list, key lookup in that one key
 * set, then jose's `compactVerify` (the same signature step `jwtVerify` runs first).
 * `TokenVerifier` runs the same steps then `jwtVerify`. Used on its own for test vectors whose
 * payload is not a claims set (Wycheproof). Throws ShieldError.
 */
export async function verifyJwsSignature(
  token: string,
  keySet: IssuerKeySet,
  policy: { readonly algorithms: readonly string[]; readonly maxTokenBytes: number },
): Promise<VerifiedSignature> {
  const jws = inspectCompactJws(token, policy.maxTokenBytes);
  assertAlgorithmAllowed(jws, policy.algorithms);
  const key = await keySet.resolveKey(jws.header);
  try {
    const { payload } = await compactVerify(token, key.key, { algorithms: [...policy.algorithms], crit: {} });
    return { header: jws.header, payload, key };
  } catch (err) {
    throw translateJoseError(err);
  }
}
