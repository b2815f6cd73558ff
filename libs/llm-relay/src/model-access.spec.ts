import { describe, expect, it } from 'vitest';
import type { ShieldPrincipal } from '@inference-shield/identity';
import type { LlmRelayModuleOptions } from './llm-relay-options.interface.js';
import { resolveLlmRelayOptions } from './llm-relay-options.resolver.js';
import { clientOf, mayUse, rolesOf } from './model-access.js';

function model(rules: unknown[]) {
  const o = resolveLlmRelayOptions({
    upstreams: { llm: {} },
    models: { m: { upstream: 'llm' } },
    access: { m: rules },
  } as unknown as LlmRelayModuleOptions);
  const m = o.models.get('m');
  if (m === undefined) throw new Error('no model');
  return m;
}

const token = (claims: Record<string, unknown>, scopes: string[] = []): ShieldPrincipal => ({
  method: 'oidc',
  subject: 'alice',
  issuer: 'https://idp',
  scopes,
  claims,
});
const workload = (spiffeId: string): ShieldPrincipal => ({
  method: 'mtls',
  subject: spiffeId,
  issuer: 'CN=ca',
  scopes: [],
  claims: {},
  spiffeId,
});
const ROLES = ['roles'];

describe('mayUse', () => {
  it.each([
    ['scopes all held', [{ scopes: ['a', 'b'] }], token({}, ['a', 'b', 'c']), true],
    ['a scope missing', [{ scopes: ['a', 'b'] }], token({}, ['a']), false],
    ['a role held', [{ roles: ['admin'] }], token({ roles: ['admin'] }), true],
    ['roles as a space-separated string', [{ roles: ['admin'] }], token({ roles: 'user admin' }), true],
    ['a role missing', [{ roles: ['admin'] }], token({ roles: ['user'] }), false],
    ['a SPIFFE ID listed', [{ spiffeIds: ['spiffe://d/a'] }], workload('spiffe://d/a'), true],
    ['a SPIFFE ID not listed', [{ spiffeIds: ['spiffe://d/a'] }], workload('spiffe://d/b'), false],
    ['a token where a SPIFFE ID is needed', [{ spiffeIds: ['spiffe://d/a'] }], token({}), false],
    ['client_id listed', [{ clients: ['svc'] }], token({ client_id: 'svc' }), true],
    ['azp listed', [{ clients: ['svc'] }], token({ azp: 'svc' }), true],
    ['another client', [{ clients: ['svc'] }], token({ client_id: 'other' }), false],
    ['AND within a rule', [{ scopes: ['a'], clients: ['svc'] }], token({ client_id: 'svc' }, []), false],
    ['OR across rules', [{ scopes: ['a'] }, { clients: ['svc'] }], token({ client_id: 'svc' }, []), true],
    ['an empty rule: any caller', [{}], workload('spiffe://d/z'), true],
  ])('%s → %s', (_name, rules, principal, expected) => {
    expect(mayUse(model(rules), principal, ROLES)).toBe(expected);
  });

  it('reads roles at a nested path, own members only', () => {
    expect(rolesOf(token({ realm_access: { roles: ['x'] } }), ['realm_access', 'roles'])).toEqual(['x']);
    const inherited = Object.create({ roles: ['admin'] }) as Record<string, unknown>;
    expect(rolesOf(token(inherited), ROLES)).toEqual([]);
    expect(clientOf(token({ client_id: 42 }))).toBeUndefined();
  });
});
