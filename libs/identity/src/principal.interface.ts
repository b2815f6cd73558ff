import type { AuthMethod } from './policy.interface.js';

/**
 * The verified caller, as the guard attached it to the request. Frozen: handlers read it, never
 * build it, and never parse tokens or certificates themselves.
 */
export interface ShieldPrincipal {
  readonly method: AuthMethod;
  /** Token `sub`; for mTLS, the SPIFFE ID, else the certificate's subject common name. */
  readonly subject: string;
  /** Token `iss`; for mTLS, the issuer DN of the client certificate. */
  readonly issuer: string;
  /** Token scopes (empty for mTLS). */
  readonly scopes: readonly string[];
  /** The verified token claims (empty for mTLS). */
  readonly claims: Readonly<Record<string, unknown>>;
  /** SPIFFE ID of the mTLS caller. */
  readonly spiffeId?: string;
  /** Lowercase hex SHA-256 of the client certificate (mTLS, or a certificate-bound token). */
  readonly certificateFingerprint?: string;
  /**
   * RFC 9449 `cnf.jkt` of a DPoP-bound token: the base64url SHA-256 thumbprint (RFC 7638) of the
   * key that signed this request's DPoP proof, checked against the token.
   */
  readonly dpopKeyThumbprint?: string;
  /** Token `jti`, when present. */
  readonly tokenId?: string;
}
