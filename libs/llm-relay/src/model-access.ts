import type { ShieldPrincipal } from '@inference-shield/identity';
import type { ResolvedAccessRule, ResolvedRelayModel } from './llm-relay-options.interface.js';

/** Reads a claim by path segments, own members only (never the prototype chain). */
function claimAt(claims: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let current: unknown = claims;
  for (const segment of path) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/** The caller's roles: a string array claim, or a space-separated string. */
export function rolesOf(principal: ShieldPrincipal, roleClaimPath: readonly string[]): readonly string[] {
  const value = claimAt(principal.claims, roleClaimPath);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return value.split(' ').filter((v) => v.length > 0);
  return [];
}

/** The OAuth client of a token (RFC 9068 `client_id`, else OIDC `azp`). */
export function clientOf(principal: ShieldPrincipal): string | undefined {
  const c = principal.claims['client_id'] ?? principal.claims['azp'];
  return typeof c === 'string' ? c : undefined;
}

function ruleAdmits(
  rule: ResolvedAccessRule,
  principal: ShieldPrincipal,
  roles: () => readonly string[],
): boolean {
  for (const scope of rule.scopes) if (!principal.scopes.includes(scope)) return false;
  if (rule.roles.length > 0) {
    const held = roles();
    for (const role of rule.roles) if (!held.includes(role)) return false;
  }
  if (
    rule.spiffeIds !== undefined &&
    (principal.spiffeId === undefined || !rule.spiffeIds.has(principal.spiffeId))
  )
    return false;
  if (rule.clients !== undefined) {
    const client = clientOf(principal);
    if (client === undefined || !rule.clients.has(client)) return false;
  }
  return true;
}

/** True when one of the model's rules admits the caller (rules are OR, conditions in a rule AND). */
export function mayUse(
  model: ResolvedRelayModel,
  principal: ShieldPrincipal,
  roleClaimPath: readonly string[],
): boolean {
  let roles: readonly string[] | undefined;
  const lazyRoles = (): readonly string[] => (roles ??= rolesOf(principal, roleClaimPath));
  for (const rule of model.rules) if (ruleAdmits(rule, principal, lazyRoles)) return true;
  return false;
}
