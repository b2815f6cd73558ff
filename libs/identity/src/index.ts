/**
 * `@inference-shield/identity`: who may call an inference service. A global deny-by-default guard,
 * route policies checked at start-up, OIDC access tokens (and SAML-exchange tokens), mTLS
 * workloads, RFC 8705 certificate-bound tokens, an audit event per decision.
 *
 * This entry holds what an application uses: the module and its options, the route decorators,
 * the principal, the audit sinks, and the verifier's readiness and figures (for health checks and
 * metrics). The passport door is `@inference-shield/identity/passport`.
 */
// Configure the module.
export { IdentityModule } from './identity.module.js';
export type {
  AuditOptions,
  ControllerRoutePolicy,
  IdentityModuleOptions,
  MtlsOptions,
  PathRoutePolicy,
  RoutePolicy,
  UserOptions,
} from './identity-options.interface.js';
export type { JwtSvidOptions, JwtSvidBundleSource } from './tokens/jwt-svid-options.js';
export type { IssuerOptions, TokenVerifierOptions } from './tokens/token-verifier-options.interface.js';
export type { ResourceMetadataOptions } from './discovery/resource-metadata-options.interface.js';
export type {
  ClientSecretBasicClientAuth,
  IntrospectionClientAuth,
  IntrospectionOptions,
  PrivateKeyJwtClientAuth,
  TlsClientAuth,
} from './introspection/introspection-options.interface.js';

// DPoP (RFC 9449): options and the replay stores (one process, or shared by replicas in Redis).
export type { DpopNonceOptions, DpopOptions } from './dpop/dpop-options.interface.js';
export {
  MemoryDpopReplayStore,
  type DpopReplayStore,
  type MemoryDpopReplayStoreOptions,
} from './dpop/dpop-replay.store.js';
export {
  RedisDpopReplayStore,
  type DpopRedisClient,
  type RedisDpopReplayStoreOptions,
} from './dpop/redis-dpop-replay.store.js';

// Decorate routes.
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
  RequireSenderConstrained,
  saml,
  type PolicyDecorator,
} from './policy.decorator.js';
export { RefusalBody, type RefusalBodyRenderer, type RefusalFacts } from './refusal-body.decorator.js';
export type {
  AuthMethod,
  ClaimRequirement,
  MtlsRequirement,
  PolicyAlternative,
  TokenRequirement,
} from './policy.interface.js';

// Read the principal.
export { Principal, principalOf } from './principal.decorator.js';
export type { ShieldPrincipal } from './principal.interface.js';

// Plug an audit sink.
export type { AuditDecision, AuditEvent, AuditSink } from './audit.interface.js';
export {
  JsonLinesAuditSink,
  LoggerAuditSink,
  type AuditLineStream,
  type JsonLinesAuditSinkOptions,
  type JsonLinesAuditSinkStats,
} from './audit.sink.js';
export { AUDIT_SCHEMA_VERSION } from './audit.event.js';

// Operate it: readiness (`startup: 'not-ready'`) and figures for metrics, through the injected
// verifier (a type only: the module creates it).
export { InjectTokenVerifier } from './inject.decorators.js';
export type { IntrospectionStats } from './introspection/introspector.js';
export type {
  IssuerKeySetStats,
  TokenVerifier,
  TokenVerifierStats,
  VerifiedToken,
  VerifyContext,
} from './tokens/index.js';
