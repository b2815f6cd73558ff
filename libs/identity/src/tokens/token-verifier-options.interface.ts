import type { CaSource } from '@inference-shield/core/internal';
import type { JWK } from 'jose';
import type { JwtSvidOptions, ResolvedJwtSvidOptions } from './jwt-svid-options.js';
import type {
  IntrospectionOptions,
  ResolvedIntrospectionOptions,
} from '../introspection/introspection-options.interface.js';

/** One trusted issuer of access tokens: its audience(s), algorithms and where its keys come from. */
export interface IssuerOptions {
  /** Exact `iss` value (compared byte for byte); an `https:` URL. */
  issuer: string;
  /**
   * Accepted `aud` values; a token must contain at least one of them. Give either this or
   * `resource` (or both: `resource` is then one more accepted value).
   */
  audience?: string | string[];
  /**
   * RFC 8707: this service's resource identifier (the `resource` clients request tokens for, and
   * the RFC 9728 `resource` of its metadata), accepted as `aud` by exact string comparison. An
   * `https:` URL without fragment.
   */
  resource?: string;
  /** The issuer's JWKS (`https:` only). Without it and without `jwks`, OpenID discovery at `${issuer}/.well-known/openid-configuration`. */
  jwksUri?: string;
  /** Inline public keys, never fetched (for example our own SAML-exchange issuer). */
  jwks?: { keys: JWK[] };
  /** Allowed JWS algorithms. Default `['RS256','PS256','ES256','EdDSA']`, plus the HS* the shared secret is long enough for. */
  algorithms?: string[];
  /** A shared secret of at least 32 bytes; enables HS256 (and HS384 from 48 bytes, HS512 from 64) for this issuer only. */
  sharedSecret?: string | Uint8Array;
  /** Require RFC 9068 `typ: at+jwt` (or `application/at+jwt`). Default false. */
  requireAccessTokenType?: boolean;
  /**
   * Refuse this issuer's tokens unless they are sender-constrained: DPoP-bound (RFC 9449
   * `cnf.jkt`, needs the module's `dpop` option) or certificate-bound (RFC 8705). Default false.
   */
  requireSenderConstrained?: boolean;
  /** Clock skew allowed on `exp`, `nbf`, `iat`, in seconds. Default 5, at most 300. */
  clockToleranceSeconds?: number;
  /**
   * CA bundle trusted for this issuer's https fetches (discovery, JWKS), *instead of* the system
   * roots: `{ file: '/path/ca.pem' }` or `{ pem: '-----BEGIN CERTIFICATE-----...' }`, the shape
   * every Inference Shield package takes. Read and checked when the module starts.
   */
  ca?: CaSource;
  /** The principal method reported for this issuer's tokens. Default `'oidc'`. */
  method?: 'oidc' | 'saml';
  /** Claim holding the scopes. Default `'scope'` (space-delimited string); an `scp` string array is also read. */
  scopeClaim?: string;
  /** Timeout of each discovery or JWKS fetch, in ms. Default 5000. */
  fetchTimeoutMs?: number;
  /** An unknown `kid` refetches the key set at most once per this period (single-flight). Default 30000. */
  refetchCooldownMs?: number;
  /** Keys held stay usable this long after the last successful fetch while refreshes fail. Default 24 h. */
  maxKeyStalenessMs?: number;
  /** The key set is refreshed (lazily, on use) after this period. Default 10 min. */
  refreshIntervalMs?: number;
  /** RFC 7662: how this issuer's opaque access tokens are checked (see `opaqueTokenIssuer`). */
  introspection?: IntrospectionOptions;
}

/** Options of {@link TokenVerifier}, as written by the user. */
export interface TokenVerifierOptions {
  /** The trusted issuers; at least one. */
  issuers: IssuerOptions[];
  /** Tokens longer than this are refused before any parsing. Default 8192. */
  maxTokenBytes?: number;
  /** Verified tokens kept to skip the signature check on reuse. Default 10000; 0 disables. */
  cacheMaxEntries?: number;
  /** `'fail'` (default): `create()` rejects when a key set cannot be loaded. `'not-ready'`: start, refuse with 503 until loaded. */
  startup?: 'fail' | 'not-ready';
  /**
   * The issuer whose introspection endpoint checks opaque tokens (a token that is not a JWS: it
   * names no issuer). It must have `introspection`. JWTs keep being routed by their `iss`.
   */
  opaqueTokenIssuer?: string;
  /**
   * SPIFFE JWT-SVIDs from other workloads, checked with the JWT bundles of their trust domains
   * (see {@link JwtSvidOptions}). With it, `issuers` may be empty.
   */
  jwtSvids?: JwtSvidOptions;
}

/** Where an issuer's public keys come from, decided once at start-up. */
export type KeySource =
  | { readonly kind: 'inline'; readonly jwks: { readonly keys: readonly JWK[] } }
  | { readonly kind: 'jwks-uri'; readonly jwksUri: string }
  | { readonly kind: 'discovery'; readonly discoveryUrl: string }
  | { readonly kind: 'none' };

/** An issuer's options after validation: every default filled in, frozen. */
export interface ResolvedIssuerOptions {
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly keySource: KeySource;
  readonly algorithms: readonly string[];
  /** A private copy of the secret (not frozen: typed arrays cannot be). */
  readonly sharedSecret?: Uint8Array;
  readonly requireAccessTokenType: boolean;
  readonly requireSenderConstrained: boolean;
  readonly clockToleranceSeconds: number;
  readonly ca?: CaSource;
  readonly method: 'oidc' | 'saml';
  readonly scopeClaim: string;
  readonly fetchTimeoutMs: number;
  readonly refetchCooldownMs: number;
  readonly maxKeyStalenessMs: number;
  readonly refreshIntervalMs: number;
  readonly introspection?: ResolvedIntrospectionOptions;
}

/** {@link TokenVerifierOptions} after {@link resolveTokenVerifierOptions}. */
export interface ResolvedTokenVerifierOptions {
  readonly issuers: readonly ResolvedIssuerOptions[];
  readonly maxTokenBytes: number;
  readonly cacheMaxEntries: number;
  readonly startup: 'fail' | 'not-ready';
  /** Absent when no issuer introspects opaque tokens. */
  readonly opaqueTokenIssuer?: string;
  /** Absent unless JWT-SVIDs are accepted. */
  readonly jwtSvids?: ResolvedJwtSvidOptions;
}
