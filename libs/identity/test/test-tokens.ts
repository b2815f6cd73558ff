/**
 * Test kit for the token specs (not exported by the library): key pairs, honest tokens signed
 * with jose, and hand-built tokens (any header, any payload bytes, a real signature) for the
 * attacks jose refuses to produce.
 */
import { constants, createHmac, sign as cryptoSign, KeyObject, type webcrypto } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';

/** A signing key of ours, its public JWK (with `kid` and `alg`) and its KeyObjects. */
export interface TestKey {
  readonly alg: string;
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicJwk: JWK;
}

/** A fresh key pair for `alg`, as an IdP would publish it. */
export async function testKey(
  alg: string,
  kid: string,
  opts: { modulusLength?: number } = {},
): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(opts.modulusLength !== undefined ? { modulusLength: opts.modulusLength } : {}),
  });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return {
    alg,
    kid,
    privateKey: KeyObject.from(privateKey as webcrypto.CryptoKey),
    publicKey: KeyObject.from(publicKey as webcrypto.CryptoKey),
    publicJwk,
  };
}

/** An honest token signed with jose. */
export async function signToken(
  key: TestKey,
  claims: JWTPayload,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, ...header })
    .sign(key.privateKey);
}

/** base64url of a JSON value, or of a string taken as-is (for hand-written JSON). */
export function b64(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return Buffer.from(text, 'utf8').toString('base64url');
}

const HASH: Readonly<Record<string, string>> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/**
 * Signs any header and payload (objects, or raw JSON text for duplicate members) with node's
 * crypto, the way an attacker holding `key` would: no library policy in the way.
 */
export function forgeToken(
  header: unknown,
  payload: unknown,
  key: { alg: string; privateKey: KeyObject } | { alg: string; secret: Uint8Array | string },
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signInput(input, key).toString('base64url')}`;
}

/** The raw JWS signature of `input` for `key.alg`. */
export function signInput(
  input: string,
  key: { alg: string; privateKey: KeyObject } | { alg: string; secret: Uint8Array | string },
): Buffer {
  const hash = HASH[key.alg.slice(2)] ?? 'sha256';
  if ('secret' in key) return createHmac(hash, key.secret).update(input).digest();
  if (key.alg === 'EdDSA' || key.alg === 'Ed25519')
    return cryptoSign(null, Buffer.from(input), key.privateKey);
  if (key.alg.startsWith('ES')) {
    return cryptoSign(hash, Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  }
  if (key.alg.startsWith('PS')) {
    return cryptoSign(hash, Buffer.from(input), {
      key: key.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: Number(key.alg.slice(2)) / 8,
    });
  }
  return cryptoSign(hash, Buffer.from(input), key.privateKey);
}

/** Standard claims for `issuer`/`audience`, valid at `nowMs`, plus `extra` (undefined removes a claim). */
export function claimsAt(
  nowMs: number,
  issuer: string,
  audience: string,
  extra: Record<string, unknown> = {},
): JWTPayload {
  const now = Math.floor(nowMs / 1000);
  const claims: Record<string, unknown> = {
    iss: issuer,
    aud: audience,
    sub: 'alice',
    iat: now - 10,
    exp: now + 600,
    jti: 'jti-1',
    scope: 'models:read models:infer',
    ...extra,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return claims as JWTPayload;
}
