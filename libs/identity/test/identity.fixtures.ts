/**
 * Identity's test fixtures, outside src/ so they are never built or shipped: an ES256 token signer
 * that can also craft hostile tokens byte by byte, token verifier options trusting it, and a
 * verified principal. Used by the unit specs beside the code and by the end-to-end specs in
 * test/identity (which start apps and call them through test/support/harness.ts).
 */
import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { exportJWK, type JWK } from 'jose';
import type { ShieldPrincipal } from '../src/principal.interface.js';
import type { TokenVerifierOptions } from '../src/tokens/index.js';

export const ISSUER = 'https://idp.shield.local';
export const AUDIENCE = 'inference';
/** A verified OIDC caller, for unit specs of what consumes principals (audit, principal store). */
export const ALICE: ShieldPrincipal = Object.freeze({
  method: 'oidc',
  subject: 'alice',
  issuer: 'https://idp.example',
  scopes: Object.freeze(['models:infer']),
  claims: Object.freeze({}),
});

const b64url = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

/** An ES256 issuer key pair, a signer for good tokens, and a crafter for hostile ones. */
export interface Signer {
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly publicKey: KeyObject;
  /** A valid access token; pass a claim as `undefined` to remove it. */
  sign(claims?: Record<string, unknown>, header?: Record<string, unknown>): string;
  /** Signs exactly these header and payload JSON texts (duplicate members stay duplicated). */
  craft(headerJson: string, payloadJson: string): string;
}

export async function createSigner(kid = 'k1'): Promise<Signer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const craft = (headerJson: string, payloadJson: string): string => {
    const input = `${b64url(headerJson)}.${b64url(payloadJson)}`;
    const sig = cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  };
  return {
    kid,
    publicJwk,
    publicKey,
    craft,
    sign(claims = {}, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: ISSUER,
        aud: AUDIENCE,
        sub: 'alice',
        iat: now,
        exp: now + 300,
        jti: `jti-${Math.random().toString(36).slice(2)}`,
        scope: 'models:infer',
        ...claims,
      };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      const h: Record<string, unknown> = { alg: 'ES256', typ: 'at+jwt', kid, ...header };
      for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
      return craft(JSON.stringify(h), JSON.stringify(payload));
    },
  };
}

/** Token verifier options trusting the signer's key inline (no network). */
export function oidcOptions(signer: Signer, extra: Partial<TokenVerifierOptions> = {}): TokenVerifierOptions {
  return {
    issuers: [
      { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [signer.publicJwk] }, algorithms: ['ES256'] },
    ],
    ...extra,
  };
}
