import { ShieldError } from '@inference-shield/core/internal';
import type { PeerIdentity } from './peer-certificate.js';
import type { CompiledMtlsAlternative, CompiledTokenAlternative } from './policy.compiler.js';
import type { ClaimRequirement, TokenMethod } from './policy.interface.js';

/** What a verified token offers to the policy, computed once per verified token. */
export interface TokenFacts {
  readonly method: TokenMethod;
  readonly issuer: string;
  readonly scopes: ReadonlySet<string>;
  readonly roles: ReadonlySet<string>;
  readonly claims: Readonly<Record<string, unknown>>;
  /** The token carried `cnf.x5t#S256` and it matched the live client certificate. */
  readonly bound: boolean;
  /** The token carried `cnf.jkt` and the request's DPoP proof was signed by that key (RFC 9449). */
  readonly dpopBound: boolean;
}

/** Own-property lookup along a dotted path: never reaches `__proto__` or inherited members. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let value: unknown = claims;
  for (const segment of path) {
    if (
      typeof value !== 'object' ||
      value === null ||
      Array.isArray(value) ||
      !Object.hasOwn(value, segment)
    ) {
      return undefined;
    }
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** The roles at `path`: an array's string members, or a single string. */
export function rolesAt(
  claims: Readonly<Record<string, unknown>>,
  path: readonly string[],
): ReadonlySet<string> {
  const value = claimAt(claims, path);
  if (typeof value === 'string') return new Set([value]);
  if (Array.isArray(value)) return new Set(value.filter((v): v is string => typeof v === 'string'));
  return new Set();
}

/** Scalar: equal, or contained in an array claim. Array: every member contained in an array claim. */
export function claimSatisfies(value: unknown, expected: ClaimRequirement): boolean {
  if (Array.isArray(expected)) {
    return Array.isArray(value) && expected.every((e) => (value as unknown[]).includes(e));
  }
  return value === expected || (Array.isArray(value) && value.includes(expected));
}

/**
 * The first failure of one token alternative, in the order a caller can act on it:
 * issuer, binding (401), scopes (403 insufficient_scope), roles and claims (403).
 */
function checkToken(alt: CompiledTokenAlternative, facts: TokenFacts): ShieldError | undefined {
  if (alt.issuers && !alt.issuers.has(facts.issuer)) return new ShieldError('ERR_CALLER_NOT_ALLOWED');
  if (alt.boundToken && !facts.bound) return new ShieldError('ERR_TOKEN_BINDING_REQUIRED');
  if (alt.senderConstrained && !facts.bound && !facts.dpopBound) {
    return new ShieldError('ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED');
  }
  for (const s of alt.scopes) {
    if (!facts.scopes.has(s)) return new ShieldError('ERR_INSUFFICIENT_SCOPE', { scope: alt.scopeChallenge });
  }
  for (const r of alt.roles) {
    if (!facts.roles.has(r)) return new ShieldError('ERR_CLAIMS_NOT_SATISFIED', { detail: 'role' });
  }
  for (const [path, expected] of alt.claims) {
    if (!claimSatisfies(claimAt(facts.claims, path), expected)) {
      return new ShieldError('ERR_CLAIMS_NOT_SATISFIED', { detail: 'claim' });
    }
  }
  return undefined;
}

/**
 * `undefined` when some alternative of the token's method passes; else the failure of the first
 * alternative of that method, or `ERR_AUTH_METHOD_NOT_ALLOWED` when the route takes none.
 */
export function matchToken(
  alternatives: readonly CompiledTokenAlternative[],
  facts: TokenFacts,
): ShieldError | undefined {
  let first: ShieldError | undefined;
  for (const alt of alternatives) {
    if (alt.method !== facts.method) continue;
    const failure = checkToken(alt, facts);
    if (!failure) return undefined;
    first ??= failure;
  }
  return first ?? new ShieldError('ERR_AUTH_METHOD_NOT_ALLOWED');
}

/** `undefined` when the certificate passes an alternative's allow-lists, else `ERR_CALLER_NOT_ALLOWED`. */
export function matchMtls(
  alternatives: readonly CompiledMtlsAlternative[],
  peer: PeerIdentity,
): ShieldError | undefined {
  for (const alt of alternatives) {
    if (alt.any) return undefined;
    if (peer.spiffeId !== undefined && alt.spiffeIds.has(peer.spiffeId)) return undefined;
    if (peer.trustDomain !== undefined && alt.trustDomains.has(peer.trustDomain)) return undefined;
    for (const san of peer.sans) if (alt.sans.has(san)) return undefined;
  }
  return new ShieldError('ERR_CALLER_NOT_ALLOWED');
}
