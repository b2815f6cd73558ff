/** Metadata key under which the policy decorators record a route's policy fragments. */
export const SHIELD_POLICY_METADATA = 'shield:identity:policy';

/** Injection token of the resolved, frozen {@link ResolvedIdentityOptions}. */
export const IDENTITY_OPTIONS: unique symbol = Symbol('SHIELD_IDENTITY_OPTIONS');

/** Injection token of the module's `TokenVerifier` (`null` when no `oidc` issuer is configured). */
export const TOKEN_VERIFIER: unique symbol = Symbol('SHIELD_TOKEN_VERIFIER');

/** Injection token of the {@link AuditSink} that receives one event per access decision. */
export const AUDIT_SINK: unique symbol = Symbol('SHIELD_AUDIT_SINK');

/** The name under which {@link ShieldJwtStrategy} registers itself with passport. */
export const SHIELD_JWT_STRATEGY = 'shield-jwt';
