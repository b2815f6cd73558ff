/** Metadata key under which the policy decorators record a route's policy fragments. */
export const SHIELD_POLICY_METADATA = 'shield:identity:policy';

/** Injection token of the resolved, frozen {@link ResolvedIdentityOptions}. */
export const IDENTITY_OPTIONS: unique symbol = Symbol.for('@inference-shield/identity:options');

/** Injection token of the module's `TokenVerifier` (`null` when no `oidc` issuer is configured). */
export const TOKEN_VERIFIER: unique symbol = Symbol.for('@inference-shield/identity:token-verifier');

/** Injection token of the RFC 9728 metadata answer (`null` without `resourceMetadata`). */
export const RESOURCE_METADATA: unique symbol = Symbol.for('@inference-shield/identity:resource-metadata');

/** Injection token of the {@link AuditSink} that receives one event per access decision. */
export const AUDIT_SINK: unique symbol = Symbol.for('@inference-shield/identity:audit-sink');

/** The name under which {@link ShieldJwtStrategy} registers itself with passport. */
export const SHIELD_JWT_STRATEGY = 'shield-jwt';
