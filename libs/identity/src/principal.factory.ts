import type { TokenFacts } from './policy.matcher.js';
import { rolesAt } from './policy.matcher.js';
import type { ShieldPrincipal } from './principal.interface.js';
import type { VerifiedToken } from './tokens/index.js';

/** A verified token seen by the policy and by the handler. */
export interface TokenIdentity {
  readonly principal: ShieldPrincipal;
  readonly facts: TokenFacts;
}

/**
 * The principal and policy facts of a verified token. Pure: the decider keeps the result per
 * verified token (a verifier that caches verifications hands back the same object for the same
 * token), so they are built once per token, not once per request.
 */
export function tokenIdentityOf(token: VerifiedToken, roleClaimPath: readonly string[]): TokenIdentity {
  const principal: {
    -readonly [K in keyof ShieldPrincipal]: ShieldPrincipal[K];
  } = {
    method: token.method,
    subject: token.subject,
    issuer: token.issuer,
    // The verifier's list is a frozen copy already: shared, not copied again.
    scopes: Object.isFrozen(token.scopes) ? token.scopes : Object.freeze([...token.scopes]),
    claims: token.claims,
  };
  if (token.tokenId !== undefined) principal.tokenId = token.tokenId;
  if (token.certificateThumbprint !== undefined) {
    // RFC 8705 §3.1: x5t#S256 is the base64url SHA-256 of the DER certificate; the verifier has
    // checked it equals the live client certificate's, so its hex form is that fingerprint.
    principal.certificateFingerprint = Buffer.from(token.certificateThumbprint, 'base64url').toString('hex');
  }
  // RFC 9449: the decider has checked this request's proof was signed by this key.
  if (token.dpopKeyThumbprint !== undefined) principal.dpopKeyThumbprint = token.dpopKeyThumbprint;
  return Object.freeze({
    principal: Object.freeze(principal),
    facts: Object.freeze({
      method: token.method,
      issuer: token.issuer,
      scopes: new Set(token.scopes),
      roles: rolesAt(token.claims, roleClaimPath),
      claims: token.claims,
      bound: token.certificateThumbprint !== undefined,
      dpopBound: token.dpopKeyThumbprint !== undefined,
    }),
  });
}
