import 'reflect-metadata';
import { SHIELD_POLICY_METADATA } from './identity.constants.js';
import type {
  ClaimRequirement,
  MtlsRequirement,
  PolicyAlternative,
  PolicyFragment,
  TokenRequirement,
} from './policy.interface.js';

/** A decorator usable on a controller class or on one handler (the handler's policy wins). */
export type PolicyDecorator = ClassDecorator & MethodDecorator;

/**
 * Records one fragment on the handler (method decorator) or on the class. Fragments on the same
 * target are kept in source order and merged when the module walks the routes at start-up, where
 * contradictions are refused with the route's name.
 */
function addFragment(fragment: PolicyFragment): PolicyDecorator {
  return ((target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder: object = descriptor ? (descriptor.value as object) : target;
    const existing = (Reflect.getOwnMetadata(SHIELD_POLICY_METADATA, holder) ?? []) as PolicyFragment[];
    // Decorators apply bottom-up: prepend so the stored order is the order in the source.
    Reflect.defineMetadata(SHIELD_POLICY_METADATA, Object.freeze([fragment, ...existing]), holder);
    return descriptor;
  }) as PolicyDecorator;
}

// Copies what the caller passed, so mutating an array after decoration cannot change a policy.
function copyTokenRequirement(req: TokenRequirement): TokenRequirement {
  const out: {
    scopes?: readonly string[];
    roles?: readonly string[];
    claims?: Readonly<Record<string, ClaimRequirement>>;
    issuers?: readonly string[];
    boundToken?: boolean;
    senderConstrained?: boolean;
  } = {};
  if (req.scopes !== undefined) out.scopes = Object.freeze([...req.scopes]);
  if (req.roles !== undefined) out.roles = Object.freeze([...req.roles]);
  if (req.issuers !== undefined) out.issuers = Object.freeze([...req.issuers]);
  if (req.claims !== undefined) out.claims = copyClaims(req.claims);
  if (req.boundToken !== undefined) out.boundToken = req.boundToken;
  if (req.senderConstrained !== undefined) out.senderConstrained = req.senderConstrained;
  return Object.freeze(out);
}

function copyClaims(
  claims: Readonly<Record<string, ClaimRequirement>>,
): Readonly<Record<string, ClaimRequirement>> {
  const out: Record<string, ClaimRequirement> = Object.create(null) as Record<string, ClaimRequirement>;
  for (const [key, value] of Object.entries(claims)) {
    out[key] = Array.isArray(value)
      ? Object.freeze([...(value as readonly (string | number | boolean)[])])
      : value;
  }
  return Object.freeze(out);
}

function copyMtlsRequirement(req: MtlsRequirement): MtlsRequirement {
  const out: { spiffeIds?: readonly string[]; trustDomains?: readonly string[]; sans?: readonly string[] } =
    {};
  if (req.spiffeIds !== undefined) out.spiffeIds = Object.freeze([...req.spiffeIds]);
  if (req.trustDomains !== undefined) out.trustDomains = Object.freeze([...req.trustDomains]);
  if (req.sans !== undefined) out.sans = Object.freeze([...req.sans]);
  return Object.freeze(out);
}

/**
 * The route is open to anyone: no credential is read. Every route must say this explicitly;
 * a route with no policy at all stops the application at start-up.
 */
export function Public(): PolicyDecorator {
  return addFragment({ kind: 'public' });
}

/**
 * Any caller verified by a configured method passes: a valid access token from a configured
 * issuer, or a TLS client certificate the server verified (and the module's trust domains accept).
 */
export function Authenticated(): PolicyDecorator {
  return addFragment({ kind: 'authenticated' });
}

/**
 * The explicit form: the route accepts each listed alternative (OR); within one alternative, every
 * condition must hold (AND).
 *
 * @example
 * @Allow(oidc({ scopes: ['models:infer'] }), mtls({ spiffeIds: ['spiffe://shield.local/gateway'] }))
 */
export function Allow(...alternatives: PolicyAlternative[]): PolicyDecorator {
  return addFragment({ kind: 'allow', alternatives: Object.freeze([...alternatives]) });
}

/** An `@Allow` alternative: a bearer access token from a configured OIDC issuer. */
export function oidc(requirement: TokenRequirement = {}): PolicyAlternative {
  return Object.freeze({ method: 'oidc' as const, ...copyTokenRequirement(requirement) });
}

/** An `@Allow` alternative: a bearer access token issued for a SAML login (token method `saml`). */
export function saml(requirement: TokenRequirement = {}): PolicyAlternative {
  return Object.freeze({ method: 'saml' as const, ...copyTokenRequirement(requirement) });
}

/** An `@Allow` alternative: a TLS client certificate verified by the server, matching the allow-lists. */
export function mtls(requirement: MtlsRequirement = {}): PolicyAlternative {
  return Object.freeze({ method: 'mtls' as const, ...copyMtlsRequirement(requirement) });
}

/**
 * An OIDC access token carrying all these scopes. Missing one: 403 with
 * `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."` (RFC 6750 §3.1).
 */
export function RequireScopes(...scopes: string[]): PolicyDecorator {
  return addFragment({ kind: 'oidc', requirement: copyTokenRequirement({ scopes }) });
}

/**
 * An OIDC access token whose claims hold these values (dotted paths reach nested claims).
 * A scalar must be equal (or contained in an array claim); an array must all be contained.
 */
export function RequireClaims(claims: Readonly<Record<string, ClaimRequirement>>): PolicyDecorator {
  return addFragment({ kind: 'oidc', requirement: copyTokenRequirement({ claims }) });
}

/** An OIDC access token whose role claim (`roleClaimPath`, default `roles`) holds all these roles. */
export function RequireRoles(...roles: string[]): PolicyDecorator {
  return addFragment({ kind: 'oidc', requirement: copyTokenRequirement({ roles }) });
}

/** An OIDC access token bound to the live TLS client certificate (RFC 8705 `cnf.x5t#S256`). */
export function RequireBoundToken(): PolicyDecorator {
  return addFragment({ kind: 'oidc', requirement: copyTokenRequirement({ boundToken: true }) });
}

/**
 * An OIDC access token that is sender-constrained: DPoP-bound (RFC 9449 `cnf.jkt`, with a valid
 * proof) or bound to the live TLS client certificate (RFC 8705). A plain bearer token is refused
 * with `401 ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED`.
 */
export function RequireSenderConstrained(): PolicyDecorator {
  return addFragment({ kind: 'oidc', requirement: copyTokenRequirement({ senderConstrained: true }) });
}

/**
 * An mTLS workload allow-list: `spiffe://domain/path` allows that exact SPIFFE ID;
 * `spiffe://domain` (no path) allows every workload of that trust domain.
 *
 * @example
 * @AllowSpiffe('spiffe://shield.local/ns/prod/sa/gateway', 'spiffe://partners.example')
 */
export function AllowSpiffe(...ids: string[]): PolicyDecorator {
  const spiffeIds: string[] = [];
  const trustDomains: string[] = [];
  for (const id of ids) {
    // Only the bare `spiffe://domain` names a whole trust domain. `spiffe://domain/` (a path lost to
    // an unset variable, say) stays a SPIFFE ID, which the policy compiler refuses at boot as
    // malformed; read as a domain it would silently allow every workload of it.
    const m = /^spiffe:\/\/([^/]+)$/.exec(id);
    if (m?.[1] !== undefined) trustDomains.push(m[1]);
    else spiffeIds.push(id);
  }
  const requirement: { spiffeIds?: string[]; trustDomains?: string[] } = {};
  if (spiffeIds.length > 0) requirement.spiffeIds = spiffeIds;
  if (trustDomains.length > 0) requirement.trustDomains = trustDomains;
  return addFragment({ kind: 'mtls', requirement: copyMtlsRequirement(requirement) });
}

/** @internal Used by `UsePassport()`: the route is enforced by `ShieldPassportGuard`. */
export function passportPolicy(requirement: TokenRequirement = {}): PolicyDecorator {
  return addFragment({ kind: 'passport', requirement: copyTokenRequirement(requirement) });
}

/**
 * The fragments a list of policy decorators records, in the order written (as if they decorated
 * one class in that order). Used for the policies given in `IdentityModule` options, so they speak
 * the decorators' vocabulary and go through the same checks.
 */
export function fragmentsOf(decorators: readonly PolicyDecorator[]): readonly PolicyFragment[] {
  const holder = function policyHolder(): void {};
  // Decorators apply bottom-up; addFragment prepends, so apply the last first.
  for (let i = decorators.length - 1; i >= 0; i--) (decorators[i] as ClassDecorator)(holder);
  return (Reflect.getOwnMetadata(SHIELD_POLICY_METADATA, holder) ?? []) as readonly PolicyFragment[];
}
