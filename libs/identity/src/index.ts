/**
 * `@inference-shield/identity`: who may call an inference service. A global deny-by-default guard, route
 * policies checked at start-up, OIDC access tokens (and SAML-exchange tokens), mTLS workloads,
 * RFC 8705 certificate-bound tokens, an audit event per decision. The passport strategy is in `@inference-shield/identity/passport`.
 */
export { IdentityModule } from './identity.module.js';
export { IDENTITY_ASYNC_OPTIONS_TYPE, IDENTITY_OPTIONS_TYPE } from './identity.module-definition.js';
export type {
  AuditOptions,
  ControllerRoutePolicy,
  IdentityModuleOptions,
  MtlsOptions,
  PathRoutePolicy,
  ResolvedIdentityOptions,
  RoutePolicy,
  UserOptions,
} from './identity-options.interface.js';
export { resolveIdentityOptions } from './identity-options.resolver.js';
export { AUDIT_SINK, IDENTITY_OPTIONS, SHIELD_JWT_STRATEGY, TOKEN_VERIFIER } from './identity.constants.js';
export { InjectAuditSink, InjectIdentityOptions, InjectTokenVerifier } from './inject.decorators.js';

export {
  Allow,
  AllowSpiffe,
  Authenticated,
  mtls,
  oidc,
  Public,
  RequireBoundToken,
  RequireClaims,
  RequireRoles,
  RequireScopes,
  saml,
  type PolicyDecorator,
} from './policy.decorator.js';
export type {
  AuthMethod,
  ClaimRequirement,
  MtlsRequirement,
  PolicyAlternative,
  TokenMethod,
  TokenRequirement,
} from './policy.interface.js';
export { IdentityGuard } from './identity.guard.js';
export { PolicyRegistry } from './policy.registry.js';
export { Principal, principalOf } from './principal.decorator.js';
export type { ShieldPrincipal } from './principal.interface.js';

export type { AuditDecision, AuditEvent, AuditSink } from './audit.interface.js';
export { JsonLinesAuditSink, LoggerAuditSink, type AuditLineStream } from './audit.sink.js';

// Token verification core (libs/identity/src/tokens): named here so the public surface is explicit.
export {
  certificateThumbprint,
  DEFAULT_ASYMMETRIC_ALGORITHMS,
  extractBearerToken,
  resolveTokenVerifierOptions,
  SUPPORTED_ALGORITHMS,
  TokenVerifier,
  type IssuerKeySetStats,
  type IssuerOptions,
  type JwksFetch,
  type KeySource,
  type ResolvedIssuerOptions,
  type ResolvedTokenVerifierOptions,
  type SupportedAlgorithm,
  type TokenVerifierDeps,
  type TokenVerifierOptions,
  type TokenVerifierStats,
  type VerifiedToken,
  type VerifyContext,
} from './tokens/index.js';
