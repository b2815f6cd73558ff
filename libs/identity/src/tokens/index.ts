/**
 * Access-token verification for `@inference-shield/identity`: options, the verifier, the bearer-header
 * reader and the RFC 8705 thumbprint. Re-exported by the library entry.
 */
export type {
  IssuerOptions,
  TokenVerifierOptions,
  ResolvedIssuerOptions,
  ResolvedTokenVerifierOptions,
  KeySource,
} from './token-verifier-options.interface.js';
export { resolveTokenVerifierOptions, DEFAULT_ASYMMETRIC_ALGORITHMS } from './token-verifier-options.js';
export type { VerifiedToken } from './verified-token.interface.js';
export type { JwtSvidOptions, JwtSvidBundleSource, ResolvedJwtSvidOptions } from './jwt-svid-options.js';
export {
  TokenVerifier,
  type VerifyContext,
  type TokenVerifierDeps,
  type TokenVerifierStats,
} from './token-verifier.js';
export type { IssuerKeySetStats, KeySetState } from './issuer-key-set.js';
export type { JwksFetch } from './jwks-fetch.js';
export {
  authorizationSchemeOf,
  extractAccessToken,
  extractBearerToken,
  rawHeadersOf,
  repeatsAuthorization,
  repeatsDpopHeader,
  type AuthorizationScheme,
} from './bearer-token.js';
export { certificateThumbprint } from './certificate-thumbprint.js';
export { SUPPORTED_ALGORITHMS, type SupportedAlgorithm } from './jws-inspect.js';
