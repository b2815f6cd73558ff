/**
 * Hostile access tokens signed with real keys: the dev IdP's private key read from its keys file
 * (a private JWKS the IdP writes), or a fresh key of an attacker. `craft` signs the exact header
 * and payload JSON texts it is given, so duplicate members, odd headers and unencoded payloads
 * reach the server byte for byte.
 */
import { randomUUID, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

type CryptoKey = webcrypto.CryptoKey;

const b64url = (value: string | Uint8Array): string => Buffer.from(value).toString('base64url');

/** Signs tokens with one ES256 key. */
export interface TokenForge {
  readonly kid: string;
  /** The public half (what a JWKS would serve). */
  readonly publicJwk: JWK;
  /** Signs `base64url(headerJson).base64url(payloadJson)` as it is. */
  craft(headerJson: string, payloadJson: string): Promise<string>;
  /** Signs an RFC 7797 token whose payload segment is `payload` unencoded. */
  craftUnencoded(headerJson: string, payload: string): Promise<string>;
  /**
   * A token like the IdP's own (`typ: at+jwt`, ES256, this key's `kid`): `claims` and `header`
   * are merged over the defaults, and a member set to `undefined` is removed.
   */
  sign(claims?: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
}

/** What a token of the IdP under test carries by default. */
export interface ForgeDefaults {
  readonly issuer: string;
  readonly audience: string;
  readonly subject?: string;
  readonly scope?: string;
}

async function signInput(key: CryptoKey, input: string): Promise<string> {
  // ECDSA in WebCrypto yields r||s (IEEE P1363), the JWS encoding (RFC 7518 §3.4).
  const signature = await webcrypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key,
    new TextEncoder().encode(input),
  );
  return b64url(new Uint8Array(signature));
}

function forge(key: CryptoKey, kid: string, publicJwk: JWK, defaults: ForgeDefaults): TokenForge {
  const craft = async (headerJson: string, payloadJson: string): Promise<string> => {
    const input = `${b64url(headerJson)}.${b64url(payloadJson)}`;
    return `${input}.${await signInput(key, input)}`;
  };
  return {
    kid,
    publicJwk,
    craft,
    async craftUnencoded(headerJson, payload) {
      const input = `${b64url(headerJson)}.${payload}`;
      return `${input}.${await signInput(key, input)}`;
    },
    async sign(claims = {}, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: defaults.issuer,
        aud: defaults.audience,
        sub: defaults.subject ?? 'demo-service',
        client_id: defaults.subject ?? 'demo-service',
        scope: defaults.scope ?? 'models:infer',
        iat: now,
        exp: now + 300,
        jti: randomUUID(),
        ...claims,
      };
      const h: Record<string, unknown> = { alg: 'ES256', typ: 'at+jwt', kid, ...header };
      for (const o of [payload, h]) for (const [k, v] of Object.entries(o)) if (v === undefined) delete o[k];
      return craft(JSON.stringify(h), JSON.stringify(payload));
    },
  };
}

/**
 * A forge holding the dev IdP's own signing key: `index` 0 is the key that signs new tokens, 1 and
 * 2 the retired ones still served after a rotation.
 */
export async function forgeFromKeysFile(
  keysFile: string,
  defaults: ForgeDefaults,
  index = 0,
): Promise<TokenForge> {
  const { keys } = JSON.parse(readFileSync(keysFile, 'utf8')) as { keys: JWK[] };
  const jwk = keys[index];
  if (!jwk?.kid || !jwk.d) throw new Error(`keys file ${keysFile} has no private key #${index}`);
  const key = (await importJWK(jwk, 'ES256')) as CryptoKey;
  const { d: _private, ...publicJwk } = jwk;
  return forge(key, jwk.kid, publicJwk, defaults);
}

/** A forge holding a fresh key no JWKS lists (an attacker's), under `kid`. */
export async function forgeWithFreshKey(
  defaults: ForgeDefaults,
  kid: string = randomUUID(),
): Promise<TokenForge> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return forge(privateKey as CryptoKey, kid, publicJwk, defaults);
}

/** The signature segment of a compact token (what a log must never show any part of). */
export function signatureOf(token: string): string {
  return token.slice(token.lastIndexOf('.') + 1);
}
