import type { ResolvedSamlIdentityProvider } from './saml-options.interface.js';

/**
 * Applies an IdP's attribute mapping: defaults, then each rule whose attribute holds its value.
 * Only configured scopes and roles come out; attribute values never reach a token directly.
 */
export function mapSamlAttributes(
  claims: ResolvedSamlIdentityProvider['claims'],
  attributes: ReadonlyMap<string, readonly string[]>,
): { scopes: string[]; roles: string[] } {
  const scopes = new Set(claims.defaultScopes);
  const roles = new Set(claims.defaultRoles);
  for (const rule of claims.rules) {
    if (attributes.get(rule.attribute)?.includes(rule.equals) === true) {
      for (const s of rule.scopes) scopes.add(s);
      for (const r of rule.roles) roles.add(r);
    }
  }
  return { scopes: [...scopes], roles: [...roles] };
}
