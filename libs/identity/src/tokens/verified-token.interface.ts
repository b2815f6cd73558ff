/** What a verified access token tells us: the principal, its scopes and its binding. Frozen. */
export interface VerifiedToken {
  /** How the principal authenticated: from the issuer's `method` option. */
  readonly method: 'oidc' | 'saml';
  /** The exact `iss`. */
  readonly issuer: string;
  /** `sub`: always a non-empty string. */
  readonly subject: string;
  /** `aud`, as an array. */
  readonly audience: readonly string[];
  /** The scopes granted (`scope` space-delimited, or an `scp` array). */
  readonly scopes: readonly string[];
  /** The whole claims set, frozen. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** `jti`, when present. */
  readonly tokenId?: string;
  /** `exp`, epoch seconds. */
  readonly expiresAt: number;
  /** RFC 8705 `cnf["x5t#S256"]` (base64url SHA-256 of the client certificate) when the token is bound. */
  readonly certificateThumbprint?: string;
  /**
   * RFC 9449 `cnf.jkt` (base64url SHA-256 JWK thumbprint of the client's DPoP key) when the token
   * is DPoP-bound: every request must then carry a proof signed by that key.
   */
  readonly dpopKeyThumbprint?: string;
}
