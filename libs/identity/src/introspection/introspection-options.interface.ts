import type { CaSource } from '@inference-shield/core/internal';

/**
 * RFC 7523 §2.2 `private_key_jwt`: the resource server signs a short assertion with its own key;
 * the authorization server holds the public half (the client's registered JWKS). The default.
 */
export interface PrivateKeyJwtClientAuth {
  readonly method: 'private_key_jwt';
  /** The private key, PEM (PKCS#8, SEC1 or PKCS#1): `{ file }` or `{ pem }`. Read at start-up. */
  readonly key: { readonly file: string } | { readonly pem: string };
  /** JWS algorithm of the assertion. Default: ES256 / ES384 / ES512 for EC keys, EdDSA for Ed25519, PS256 for RSA. */
  readonly alg?: string;
  /** `kid` header of the assertion, when the client's JWKS holds several keys. */
  readonly kid?: string;
}

/** RFC 8705 §2.1 `tls_client_auth`: the resource server presents a CA-issued client certificate. */
export interface TlsClientAuth {
  readonly method: 'tls_client_auth';
  /** Client certificate file (PEM, leaf then intermediates). Read and checked at start-up. */
  readonly cert: string;
  /** Its private key file (PEM). */
  readonly key: string;
}

/**
 * RFC 6749 §2.3.1 `client_secret_basic`: a shared secret in the `Authorization` header (never in
 * the URL or the body). Weaker than the two others (the secret travels with every call and sits
 * in two places): only with `allowClientSecret: true`.
 */
export interface ClientSecretBasicClientAuth {
  readonly method: 'client_secret_basic';
  /** Where the secret is read at start-up: an environment variable or a file (its content, trimmed). */
  readonly secret: { readonly env: string } | { readonly file: string };
  /** Explicit opt-in: a shared secret is never the default. */
  readonly allowClientSecret: true;
}

/** How the resource server authenticates to the introspection endpoint. */
export type IntrospectionClientAuth = PrivateKeyJwtClientAuth | TlsClientAuth | ClientSecretBasicClientAuth;

/**
 * RFC 7662 token introspection for one issuer: how opaque access tokens of this issuer are
 * checked. Set under an issuer, and name that issuer in `oidc.opaqueTokenIssuer`.
 *
 * @example
 * introspection: {
 *   endpoint: 'https://idp.example/token/introspection',
 *   clientId: 'inference-api',
 *   clientAuth: { method: 'private_key_jwt', key: { file: '/run/secrets/introspect-key.pem' } },
 * }
 */
export interface IntrospectionOptions {
  /** The introspection endpoint: `https:`, no query, no fragment, no credentials. */
  readonly endpoint: string;
  /** The resource server's client identifier at the authorization server. */
  readonly clientId: string;
  readonly clientAuth: IntrospectionClientAuth;
  /** CA bundle trusted for the endpoint instead of the system roots. Default: the issuer's `ca`. */
  readonly ca?: CaSource;
  /** Time allowed for one introspection call, connection included, in ms. Default 3000 (100 to 30000). */
  readonly timeoutMs?: number;
  /**
   * Longest time an answer is reused, in seconds, and never past the token's `exp`. Default 60
   * (0 to 3600; 0: every request asks, concurrent requests with one token still share one call).
   * A revoked token keeps working for at most this long.
   */
  readonly maxCacheSeconds?: number;
  /** Introspection calls in flight at once; beyond, a request is answered 503. Default 32. */
  readonly maxConcurrent?: number;
}

/** How the client authenticates, resolved: secrets stay unread until start-up loads them. */
export type ResolvedIntrospectionClientAuth =
  | {
      readonly method: 'private_key_jwt';
      readonly key: { readonly file: string } | { readonly pem: string };
      readonly alg: string | undefined;
      readonly kid: string | undefined;
    }
  | { readonly method: 'tls_client_auth'; readonly cert: string; readonly key: string }
  | {
      readonly method: 'client_secret_basic';
      readonly secret: { readonly env: string } | { readonly file: string };
    };

/** {@link IntrospectionOptions} after validation: every default filled in, frozen. */
export interface ResolvedIntrospectionOptions {
  readonly endpoint: string;
  readonly clientId: string;
  readonly clientAuth: ResolvedIntrospectionClientAuth;
  readonly ca: CaSource | undefined;
  readonly timeoutMs: number;
  readonly maxCacheSeconds: number;
  readonly maxConcurrent: number;
}
