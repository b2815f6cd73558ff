import type { PeerIdentity } from './peer-certificate.js';
import type { TokenFacts } from './policy.matcher.js';
import { rolesAt } from './policy.matcher.js';
import type { ShieldPrincipal } from './principal.interface.js';
import type { VerifiedToken } from './tokens/index.js';

/** A verified token seen by the policy and by the handler. */
export interface TokenIdentity {
  readonly principal: ShieldPrincipal;
  readonly facts: TokenFacts;
}

const EMPTY_CLAIMS: Readonly<Record<string, unknown>> = Object.freeze({});
const NO_SCOPES: readonly string[] = Object.freeze([]);

// A verifier that caches verified tokens hands back the same object for the same token:
// the principal and the policy facts are then built once per token, not once per request.
const tokenCache = new WeakMap<VerifiedToken, TokenIdentity>();
const peerCache = new WeakMap<PeerIdentity, ShieldPrincipal>();
const factsByPrincipal = new WeakMap<ShieldPrincipal, TokenFacts>();

/** The policy facts behind a token principal built by {@link tokenIdentityOf}. */
export function tokenFactsOf(principal: ShieldPrincipal): TokenFacts | undefined {
  return factsByPrincipal.get(principal);
}

/** The principal and policy facts of a verified token. */
export function tokenIdentityOf(token: VerifiedToken, roleClaimPath: readonly string[]): TokenIdentity {
  const hit = tokenCache.get(token);
  if (hit) return hit;
  const principal: {
    -readonly [K in keyof ShieldPrincipal]: ShieldPrincipal[K];
  } = {
    method: token.method,
    subject: token.subject,
    issuer: token.issuer,
    scopes: Object.freeze([...token.scopes]),
    claims: token.claims,
  };
  if (token.tokenId !== undefined) principal.tokenId = token.tokenId;
  if (token.certificateThumbprint !== undefined) {
    // RFC 8705 §3.1: x5t#S256 is the base64url SHA-256 of the DER certificate; the verifier has
    // checked it equals the live client certificate's, so its hex form is that fingerprint.
    principal.certificateFingerprint = Buffer.from(token.certificateThumbprint, 'base64url').toString('hex');
  }
  const identity: TokenIdentity = Object.freeze({
    principal: Object.freeze(principal),
    facts: Object.freeze({
      method: token.method,
      issuer: token.issuer,
      scopes: new Set(token.scopes),
      roles: rolesAt(token.claims, roleClaimPath),
      claims: token.claims,
      bound: token.certificateThumbprint !== undefined,
    }),
  });
  tokenCache.set(token, identity);
  factsByPrincipal.set(identity.principal, identity.facts);
  return identity;
}

/** The principal of a verified mTLS caller. */
export function peerPrincipalOf(peer: PeerIdentity): ShieldPrincipal {
  const hit = peerCache.get(peer);
  if (hit) return hit;
  const principal: { -readonly [K in keyof ShieldPrincipal]: ShieldPrincipal[K] } = {
    method: 'mtls',
    subject: peer.spiffeId ?? peer.commonName ?? peer.fingerprint256,
    issuer: peer.issuer,
    scopes: NO_SCOPES,
    claims: EMPTY_CLAIMS,
    certificateFingerprint: peer.fingerprint256,
  };
  if (peer.spiffeId !== undefined) principal.spiffeId = peer.spiffeId;
  const frozen = Object.freeze(principal);
  peerCache.set(peer, frozen);
  return frozen;
}
