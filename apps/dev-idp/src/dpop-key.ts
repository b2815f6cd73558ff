/**
 * DPoP (RFC 9449) for the token CLI: a client key kept in a file, and proofs signed with it, so
 * `shield-token` can fetch a DPoP-bound token and then sign the proof of each request made with
 * it. DEV ONLY: the private key sits in a plain file (mode 0600).
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';

/** A client's DPoP key: the signing key, its public JWK (the proof's `jwk`) and thumbprint (`cnf.jkt`). */
export interface DpopKey {
  readonly privateKey: Parameters<SignJWT['sign']>[0];
  readonly publicJwk: JWK;
  readonly jkt: string;
}

/**
 * Reads the ES256 private JWK in `file`, or creates one there (mode 0600, never overwritten) when
 * the file does not exist. `created` says which.
 */
export async function loadOrCreateDpopKey(file: string): Promise<{ key: DpopKey; created: boolean }> {
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let privateJwk: JWK;
  let created = false;
  if (text === undefined) {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    privateJwk = await exportJWK(privateKey);
    // `wx`: a key file that appeared meanwhile is not replaced (its tokens would become useless).
    writeFileSync(file, `${JSON.stringify(privateJwk)}\n`, { mode: 0o600, flag: 'wx' });
    created = true;
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new TypeError(`${file} does not hold a JSON Web Key`);
    }
    const jwk = parsed as JWK;
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') {
      throw new TypeError(`${file} must hold an EC P-256 private JWK (ES256)`);
    }
    privateJwk = jwk;
  }
  const publicJwk: JWK = { kty: 'EC', crv: 'P-256', x: privateJwk.x, y: privateJwk.y };
  const privateKey = await importJWK(privateJwk, 'ES256');
  return { key: { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') }, created };
}

/**
 * A DPoP proof for one request (RFC 9449 §4.2): `htm`, `htu` (the URL without query and
 * fragment), a fresh `jti`, `iat` now, `ath` when an access token goes with the request, and the
 * server's `nonce` when it asked for one.
 */
export async function signDpopProof(
  key: DpopKey,
  method: string,
  url: string,
  opts: { accessToken?: string; nonce?: string } = {},
): Promise<string> {
  const target = new URL(url);
  const claims: Record<string, string> = {
    htm: method,
    htu: `${target.origin}${target.pathname}`,
  };
  if (opts.accessToken !== undefined) {
    claims['ath'] = createHash('sha256').update(opts.accessToken, 'ascii').digest('base64url');
  }
  if (opts.nonce !== undefined) claims['nonce'] = opts.nonce;
  return new SignJWT(claims)
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk })
    .setJti(randomUUID())
    .setIssuedAt()
    .sign(key.privateKey);
}
