/**
 * `@inference-shield/identity/internal`: the parts the other Inference Shield packages, the tests
 * and the benchmarks reach into (injection tokens, the guard and the decision, the token
 * verifier). Not a public API: names here may change in any release. Applications import
 * `@inference-shield/identity` (and `@inference-shield/identity/passport`).
 */
export { IDENTITY_ASYNC_OPTIONS_TYPE, IDENTITY_OPTIONS_TYPE } from './identity.module-definition.js';
export type { ResolvedIdentityOptions } from './identity-options.interface.js';
export { resolveIdentityOptions } from './identity-options.resolver.js';
export { AUDIT_SINK, IDENTITY_OPTIONS, SHIELD_JWT_STRATEGY, TOKEN_VERIFIER } from './identity.constants.js';
export { InjectAuditSink, InjectIdentityOptions } from './inject.decorators.js';
export type { TokenMethod } from './policy.interface.js';
export { IdentityGuard } from './identity.guard.js';
export { IdentityDecider, type Credentials, type Decision } from './identity.decider.js';
export { PolicyRegistry } from './policy.registry.js';
export { eventOf } from './audit.event.js';

// DPoP (libs/identity/src/dpop): the pure proof check and the per-request verifier.
export {
  verifyDpopProof,
  accessTokenHash,
  type DpopRequestFacts,
  type VerifiedDpopProof,
} from './dpop/dpop-proof.js';
export { DpopVerifier, type DpopRequest } from './dpop/dpop.verifier.js';
export { resolveDpopOptions, DEFAULT_DPOP_ALGORITHMS } from './dpop/dpop-options.resolver.js';
export type { ResolvedDpopOptions } from './dpop/dpop-options.interface.js';

// Token verification (libs/identity/src/tokens).
export {
  certificateThumbprint,
  DEFAULT_ASYMMETRIC_ALGORITHMS,
  extractBearerToken,
  resolveTokenVerifierOptions,
  SUPPORTED_ALGORITHMS,
  TokenVerifier,
  type IssuerKeySetStats,
  type JwksFetch,
  type KeySource,
  type ResolvedIssuerOptions,
  type ResolvedTokenVerifierOptions,
  type SupportedAlgorithm,
  type TokenVerifierDeps,
  type TokenVerifierStats,
  type VerifiedToken,
  type VerifyContext,
} from './tokens/index.js';
