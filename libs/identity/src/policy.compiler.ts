import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { parseClaimPath } from './claim-path.js';
import type {
  ClaimRequirement,
  MtlsRequirement,
  PolicyAlternative,
  PolicyFragment,
  TokenMethod,
  TokenRequirement,
} from './policy.interface.js';
import { isTrustDomain, parseWorkloadSpiffeId } from './spiffe-id.js';

/** One token alternative, ready for a cheap per-request match. */
export interface CompiledTokenAlternative {
  readonly method: TokenMethod;
  readonly scopes: readonly string[];
  /** RFC 6750 §3 `scope` attribute: the scopes this alternative needs, space-separated. */
  readonly scopeChallenge: string;
  readonly roles: readonly string[];
  readonly claims: readonly (readonly [path: readonly string[], expected: ClaimRequirement])[];
  readonly issuers: ReadonlySet<string> | undefined;
  readonly boundToken: boolean;
  /** DPoP-bound or certificate-bound (RFC 9449 or RFC 8705). */
  readonly senderConstrained: boolean;
}

/** One mTLS alternative; `any` when it has no allow-list. */
export interface CompiledMtlsAlternative {
  readonly any: boolean;
  readonly spiffeIds: ReadonlySet<string>;
  readonly trustDomains: ReadonlySet<string>;
  readonly sans: ReadonlySet<string>;
}

/** A route's merged, validated policy, computed once per (controller, handler) at start-up. */
export interface CompiledPolicy {
  readonly kind: 'public' | 'authenticated' | 'allow' | 'passport';
  /** `GET /path` of the route, for audit events and error messages. */
  readonly route: string;
  /** Where the policy came from (`decorator on handler`, `options by path, routePolicies[0] (...)`...). */
  readonly source: string;
  readonly token: readonly CompiledTokenAlternative[];
  readonly mtls: readonly CompiledMtlsAlternative[];
}

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const SAN_ENTRY = /^(dns|uri|email|ip):.+$/;
const MAX_LIST = 256;

/** A policy that cannot be enforced as written (names the problem; the caller names the route). */
export class PolicyDefinitionError extends Error {
  override readonly name = 'PolicyDefinitionError';
}

/**
 * Merges the fragments recorded by the decorators and checks them against the module's options.
 * The handler's fragments win over the class's as a whole (Nest's `getAllAndOverride`), so a
 * handler can loosen or tighten its class. Contradictions are refused instead of guessed at.
 */
export function compilePolicy(
  fragments: readonly PolicyFragment[] | undefined,
  route: string,
  options: ResolvedIdentityOptions,
  source = 'decorator',
): CompiledPolicy | undefined {
  if (!fragments || fragments.length === 0) return undefined;
  const kinds = new Set(fragments.map((f) => f.kind));
  for (const exclusive of ['public', 'authenticated', 'passport'] as const) {
    if (kinds.has(exclusive) && fragments.length > 1) {
      throw new PolicyDefinitionError(
        `${decoratorName(exclusive)} cannot be combined with another policy decorator`,
      );
    }
  }
  const only = fragments[0];
  if (only?.kind === 'public') return Object.freeze({ kind: 'public', route, source, token: [], mtls: [] });
  if (only?.kind === 'authenticated') {
    const token: CompiledTokenAlternative[] = options.oidc
      ? [compileToken('oidc', {}, options), compileToken('saml', {}, options)]
      : [];
    const mtls: CompiledMtlsAlternative[] = options.mtls ? [compileMtls({}, options)] : [];
    return Object.freeze({
      kind: 'authenticated',
      route,
      source,
      token: Object.freeze(token),
      mtls: Object.freeze(mtls),
    });
  }
  if (only?.kind === 'passport') {
    requireOidc(options, '@UsePassport()');
    return Object.freeze({
      kind: 'passport',
      route,
      source,
      token: Object.freeze([compileToken('oidc', only.requirement, options)]),
      mtls: Object.freeze([]),
    });
  }

  const alternatives: PolicyAlternative[] = [];
  const oidcParts: TokenRequirement[] = [];
  const mtlsParts: MtlsRequirement[] = [];
  for (const f of fragments) {
    if (f.kind === 'allow') {
      if (f.alternatives.length === 0) throw new PolicyDefinitionError('@Allow() lists no alternative');
      alternatives.push(...f.alternatives);
    } else if (f.kind === 'oidc') {
      oidcParts.push(f.requirement);
    } else if (f.kind === 'mtls') {
      if (!f.requirement.spiffeIds && !f.requirement.trustDomains && !f.requirement.sans) {
        throw new PolicyDefinitionError('@AllowSpiffe() lists no SPIFFE ID or trust domain');
      }
      mtlsParts.push(f.requirement);
    }
  }
  // Convenience decorators build one implicit alternative per method; mixing them with an explicit
  // @Allow alternative of the same method would leave AND-or-OR to guesswork, so it is refused.
  if (oidcParts.length > 0) {
    if (alternatives.some((a) => a.method === 'oidc')) {
      throw new PolicyDefinitionError(
        'mixes @Allow(oidc(...)) with @RequireScopes/@RequireClaims/@RequireRoles/@RequireBoundToken; put all OIDC conditions in @Allow',
      );
    }
    alternatives.push({ method: 'oidc', ...mergeTokenRequirements(oidcParts) });
  }
  if (mtlsParts.length > 0) {
    if (alternatives.some((a) => a.method === 'mtls')) {
      throw new PolicyDefinitionError(
        'mixes @Allow(mtls(...)) with @AllowSpiffe(); put all mTLS conditions in @Allow',
      );
    }
    alternatives.push({ method: 'mtls', ...mergeMtlsRequirements(mtlsParts) });
  }

  const token: CompiledTokenAlternative[] = [];
  const mtls: CompiledMtlsAlternative[] = [];
  for (const alt of alternatives) {
    if (alt.method === 'mtls') mtls.push(compileMtls(alt, options));
    else token.push(compileToken(alt.method, alt, options));
  }
  return Object.freeze({
    kind: 'allow',
    route,
    source,
    token: Object.freeze(token),
    mtls: Object.freeze(mtls),
  });
}

function decoratorName(kind: 'public' | 'authenticated' | 'passport'): string {
  return kind === 'public' ? '@Public()' : kind === 'authenticated' ? '@Authenticated()' : '@UsePassport()';
}

function requireOidc(options: ResolvedIdentityOptions, what: string): void {
  if (!options.oidc) {
    throw new PolicyDefinitionError(
      `${what} accepts bearer tokens but IdentityModule has no "oidc" issuers configured`,
    );
  }
}

/**
 * The issuers a token alternative admits when it names none: every issuer, unless JWT-SVIDs are
 * accepted too. A workload's JWT-SVID is not a user's access token, so a route written as plain
 * `oidc()` or `@RequireScopes()` keeps admitting the configured OIDC issuers only; a route that
 * admits workloads names their trust domain (`oidc({ issuers: ['spiffe://example.org'] })`).
 */
function defaultIssuers(options: ResolvedIdentityOptions): ReadonlySet<string> | undefined {
  const oidc = options.oidc;
  if (oidc?.jwtSvids === undefined) return undefined;
  return new Set(oidc.issuers.map((i) => i.issuer));
}

function mergeTokenRequirements(parts: readonly TokenRequirement[]): TokenRequirement {
  const scopes: string[] = [];
  const roles: string[] = [];
  const claims: Record<string, ClaimRequirement> = Object.create(null) as Record<string, ClaimRequirement>;
  let boundToken = false;
  let senderConstrained = false;
  for (const p of parts) {
    if (p.scopes) {
      if (p.scopes.length === 0) throw new PolicyDefinitionError('@RequireScopes() lists no scope');
      scopes.push(...p.scopes);
    }
    if (p.roles) {
      if (p.roles.length === 0) throw new PolicyDefinitionError('@RequireRoles() lists no role');
      roles.push(...p.roles);
    }
    if (p.claims) {
      for (const [k, v] of Object.entries(p.claims)) {
        if (Object.hasOwn(claims, k) && JSON.stringify(claims[k]) !== JSON.stringify(v)) {
          throw new PolicyDefinitionError(`@RequireClaims() asks claim "${k}" for two different values`);
        }
        claims[k] = v;
      }
      if (Object.keys(p.claims).length === 0)
        throw new PolicyDefinitionError('@RequireClaims() lists no claim');
    }
    if (p.boundToken) boundToken = true;
    if (p.senderConstrained) senderConstrained = true;
  }
  const out: {
    scopes?: string[];
    roles?: string[];
    claims?: Record<string, ClaimRequirement>;
    boundToken?: boolean;
    senderConstrained?: boolean;
  } = {};
  if (scopes.length > 0) out.scopes = scopes;
  if (roles.length > 0) out.roles = roles;
  if (Object.keys(claims).length > 0) out.claims = claims;
  if (boundToken) out.boundToken = true;
  if (senderConstrained) out.senderConstrained = true;
  return out;
}

function mergeMtlsRequirements(parts: readonly MtlsRequirement[]): MtlsRequirement {
  const spiffeIds: string[] = [];
  const trustDomains: string[] = [];
  for (const p of parts) {
    if (p.spiffeIds) spiffeIds.push(...p.spiffeIds);
    if (p.trustDomains) trustDomains.push(...p.trustDomains);
  }
  const out: { spiffeIds?: string[]; trustDomains?: string[] } = {};
  if (spiffeIds.length > 0) out.spiffeIds = spiffeIds;
  if (trustDomains.length > 0) out.trustDomains = trustDomains;
  return out;
}

function checkList(what: string, list: readonly unknown[] | undefined): readonly string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_LIST) {
    throw new PolicyDefinitionError(`${what} must list 1 to ${MAX_LIST} values`);
  }
  for (const v of list) {
    if (typeof v !== 'string' || v.length === 0)
      throw new PolicyDefinitionError(`${what} holds an empty or non-string value`);
  }
  return Object.freeze([...new Set(list as string[])]);
}

function compileToken(
  method: TokenMethod,
  req: TokenRequirement,
  options: ResolvedIdentityOptions,
): CompiledTokenAlternative {
  requireOidc(options, `${method}(...)`);
  const scopes = checkList(`${method}() scopes`, req.scopes);
  for (const s of scopes) {
    if (!SCOPE_TOKEN.test(s))
      throw new PolicyDefinitionError(`scope ${JSON.stringify(s)} is not an RFC 6749 scope-token`);
  }
  const roles = checkList(`${method}() roles`, req.roles);
  const issuers =
    req.issuers !== undefined
      ? new Set(checkList(`${method}() issuers`, req.issuers))
      : defaultIssuers(options);
  const claims: (readonly [readonly string[], ClaimRequirement])[] = [];
  if (req.claims !== undefined) {
    const entries = Object.entries(req.claims);
    if (entries.length === 0) throw new PolicyDefinitionError(`${method}() claims lists no claim`);
    for (const [path, expected] of entries) {
      let segments: readonly string[];
      try {
        segments = parseClaimPath(`claim ${JSON.stringify(path)}`, path);
      } catch (err) {
        throw new PolicyDefinitionError((err as Error).message);
      }
      if (!isClaimRequirement(expected)) {
        throw new PolicyDefinitionError(
          `claim "${path}" must require a string, number, boolean or a non-empty array of them`,
        );
      }
      claims.push(Object.freeze([segments, expected] as const));
    }
  }
  if (req.boundToken !== undefined && typeof req.boundToken !== 'boolean') {
    throw new PolicyDefinitionError(`${method}() boundToken must be a boolean`);
  }
  if (req.senderConstrained !== undefined && typeof req.senderConstrained !== 'boolean') {
    throw new PolicyDefinitionError(`${method}() senderConstrained must be a boolean`);
  }
  return Object.freeze({
    method,
    scopes,
    scopeChallenge: scopes.join(' '),
    roles,
    claims: Object.freeze(claims),
    issuers,
    boundToken: req.boundToken === true,
    senderConstrained: req.senderConstrained === true,
  });
}

function isClaimRequirement(value: unknown): value is ClaimRequirement {
  const scalar = (v: unknown): boolean =>
    typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
  if (Array.isArray(value)) return value.length > 0 && value.length <= MAX_LIST && value.every(scalar);
  return scalar(value);
}

function compileMtls(req: MtlsRequirement, options: ResolvedIdentityOptions): CompiledMtlsAlternative {
  if (!options.mtls) {
    throw new PolicyDefinitionError('accepts mTLS callers but IdentityModule has no "mtls" configuration');
  }
  const accepted = options.mtls.trustDomains;
  const reachable = (td: string, what: string): void => {
    // An allow-list entry outside the module's trust domains could never match: a typo, refused.
    if (accepted && !accepted.includes(td)) {
      throw new PolicyDefinitionError(
        `${what} is outside the accepted trust domains (${accepted.join(', ')})`,
      );
    }
  };
  const spiffeIds = checkList('mtls() spiffeIds', req.spiffeIds);
  for (const id of spiffeIds) {
    const parsed = parseWorkloadSpiffeId(id);
    if (!parsed)
      throw new PolicyDefinitionError(
        `${JSON.stringify(id)} is not a SPIFFE ID (spiffe://trust-domain/path)`,
      );
    reachable(parsed.trustDomain, JSON.stringify(id));
  }
  const trustDomains = checkList('mtls() trustDomains', req.trustDomains);
  for (const td of trustDomains) {
    if (!isTrustDomain(td))
      throw new PolicyDefinitionError(`${JSON.stringify(td)} is not a SPIFFE trust domain`);
    reachable(td, `trust domain ${JSON.stringify(td)}`);
  }
  const sans = checkList('mtls() sans', req.sans).map((s) => {
    if (!SAN_ENTRY.test(s))
      throw new PolicyDefinitionError(`SAN ${JSON.stringify(s)} must start with dns:, uri:, email: or ip:`);
    return s.startsWith('dns:') ? s.toLowerCase() : s;
  });
  return Object.freeze({
    any: spiffeIds.length === 0 && trustDomains.length === 0 && sans.length === 0,
    spiffeIds: new Set(spiffeIds),
    trustDomains: new Set(trustDomains),
    sans: new Set(sans),
  });
}
