import { describe, expect, it } from 'vitest';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { compilePolicy, PolicyDefinitionError } from './policy.compiler.js';
import { mtls, oidc, saml } from './policy.decorator.js';
import type { PolicyFragment } from './policy.interface.js';

// Only the presence of `oidc` / `mtls` and the trust domains matter to the compiler.
const both = {
  oidc: { issuers: [] },
  mtls: { trustDomains: ['shield.local'] },
  audit: { sink: undefined, includePublic: false },
  roleClaimPath: ['roles'],
} as unknown as ResolvedIdentityOptions;
const oidcOnly = { ...both, mtls: undefined } as ResolvedIdentityOptions;
const mtlsOnly = { ...both, oidc: undefined } as ResolvedIdentityOptions;

const route = 'GET /x';

describe('compilePolicy', () => {
  it('returns undefined when a route states no policy', () => {
    expect(compilePolicy(undefined, route, both)).toBeUndefined();
    expect(compilePolicy([], route, both)).toBeUndefined();
  });

  it('compiles @Public() with no alternative', () => {
    const p = compilePolicy([{ kind: 'public' }], route, both);
    expect(p).toMatchObject({ kind: 'public', route, token: [], mtls: [] });
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('compiles @Authenticated() to every configured method, with no condition', () => {
    const p = compilePolicy([{ kind: 'authenticated' }], route, both);
    expect(p?.token.map((t) => t.method)).toEqual(['oidc', 'saml']);
    expect(p?.mtls).toHaveLength(1);
    expect(p?.mtls[0]?.any).toBe(true);
    expect(compilePolicy([{ kind: 'authenticated' }], route, mtlsOnly)?.token).toEqual([]);
    expect(compilePolicy([{ kind: 'authenticated' }], route, oidcOnly)?.mtls).toEqual([]);
  });

  it('merges convenience decorators into one implicit OIDC alternative (AND)', () => {
    const p = compilePolicy(
      [
        { kind: 'oidc', requirement: { scopes: ['models:infer'] } },
        { kind: 'oidc', requirement: { scopes: ['models:read'], roles: ['ops'] } },
        { kind: 'oidc', requirement: { claims: { 'org.id': 'acme' } } },
        { kind: 'oidc', requirement: { boundToken: true } },
      ],
      route,
      both,
    );
    expect(p?.token).toHaveLength(1);
    expect(p?.token[0]).toMatchObject({
      method: 'oidc',
      scopes: ['models:infer', 'models:read'],
      scopeChallenge: 'models:infer models:read',
      roles: ['ops'],
      boundToken: true,
    });
    expect(p?.token[0]?.claims).toEqual([[['org', 'id'], 'acme']]);
  });

  it('keeps explicit @Allow alternatives in order (OR)', () => {
    const p = compilePolicy(
      [
        {
          kind: 'allow',
          alternatives: [
            oidc({ scopes: ['a'] }),
            mtls({ spiffeIds: ['spiffe://shield.local/gw'] }),
            saml({ roles: ['r'] }),
            oidc({ scopes: ['b'] }),
          ],
        },
      ],
      route,
      both,
    );
    expect(p?.token.map((t) => `${t.method}:${t.scopeChallenge}`)).toEqual(['oidc:a', 'saml:', 'oidc:b']);
    expect([...(p?.mtls[0]?.spiffeIds ?? [])]).toEqual(['spiffe://shield.local/gw']);
    expect(p?.mtls[0]?.any).toBe(false);
  });

  it('splits @AllowSpiffe into IDs and trust domains', () => {
    const p = compilePolicy(
      [
        {
          kind: 'mtls',
          requirement: { spiffeIds: ['spiffe://shield.local/a'], trustDomains: ['shield.local'] },
        },
      ],
      route,
      both,
    );
    expect(p?.mtls[0]?.trustDomains.has('shield.local')).toBe(true);
    expect(p?.mtls[0]?.spiffeIds.has('spiffe://shield.local/a')).toBe(true);
  });

  const refusals: [string, PolicyFragment[], ResolvedIdentityOptions, RegExp][] = [
    [
      '@Public with another decorator',
      [{ kind: 'public' }, { kind: 'oidc', requirement: { scopes: ['a'] } }],
      both,
      /@Public\(\) cannot be combined/,
    ],
    [
      '@Authenticated with another',
      [{ kind: 'authenticated' }, { kind: 'public' }],
      both,
      /cannot be combined/,
    ],
    ['@Allow() empty', [{ kind: 'allow', alternatives: [] }], both, /lists no alternative/],
    ['@RequireScopes() empty', [{ kind: 'oidc', requirement: { scopes: [] } }], both, /lists no scope/],
    ['@RequireRoles() empty', [{ kind: 'oidc', requirement: { roles: [] } }], both, /lists no role/],
    ['@RequireClaims({})', [{ kind: 'oidc', requirement: { claims: {} } }], both, /lists no claim/],
    ['@AllowSpiffe() empty', [{ kind: 'mtls', requirement: {} }], both, /lists no SPIFFE ID/],
    [
      'explicit oidc mixed with @RequireScopes',
      [
        { kind: 'allow', alternatives: [oidc({ scopes: ['a'] })] },
        { kind: 'oidc', requirement: { scopes: ['b'] } },
      ],
      both,
      /mixes @Allow\(oidc/,
    ],
    [
      'explicit mtls mixed with @AllowSpiffe',
      [
        { kind: 'allow', alternatives: [mtls()] },
        { kind: 'mtls', requirement: { trustDomains: ['shield.local'] } },
      ],
      both,
      /mixes @Allow\(mtls/,
    ],
    [
      'oidc route without oidc issuers',
      [{ kind: 'oidc', requirement: { scopes: ['a'] } }],
      mtlsOnly,
      /no "oidc" issuers/,
    ],
    [
      'mtls route without mtls',
      [{ kind: 'allow', alternatives: [mtls()] }],
      oidcOnly,
      /no "mtls" configuration/,
    ],
    ['scope with a space', [{ kind: 'oidc', requirement: { scopes: ['a b'] } }], both, /scope-token/],
    ['scope with a quote', [{ kind: 'oidc', requirement: { scopes: ['a"'] } }], both, /scope-token/],
    [
      'not a SPIFFE ID',
      [{ kind: 'allow', alternatives: [mtls({ spiffeIds: ['https://x/y'] })] }],
      both,
      /not a SPIFFE ID/,
    ],
    [
      'SPIFFE ID with ..',
      [{ kind: 'allow', alternatives: [mtls({ spiffeIds: ['spiffe://shield.local/a/../b'] })] }],
      both,
      /not a SPIFFE ID/,
    ],
    [
      'uppercase trust domain',
      [{ kind: 'allow', alternatives: [mtls({ trustDomains: ['Shield.local'] })] }],
      both,
      /not a SPIFFE trust domain/,
    ],
    [
      'trust domain never accepted',
      [{ kind: 'mtls', requirement: { trustDomains: ['other.example'] } }],
      both,
      /outside the accepted trust domains/,
    ],
    [
      'SPIFFE ID of a domain never accepted',
      [{ kind: 'mtls', requirement: { spiffeIds: ['spiffe://other.example/a'] } }],
      both,
      /outside the accepted/,
    ],
    [
      'SAN without a type',
      [{ kind: 'allow', alternatives: [mtls({ sans: ['worker.local'] })] }],
      both,
      /must start with dns:/,
    ],
    [
      'claim path into the prototype',
      [{ kind: 'oidc', requirement: { claims: { '__proto__.x': 'y' } } }],
      both,
      /dotted claim path/,
    ],
    [
      'claim path with an empty name',
      [{ kind: 'oidc', requirement: { claims: { 'a..b': 'y' } } }],
      both,
      /dotted claim path/,
    ],
    [
      'claim asking for an object',
      [{ kind: 'oidc', requirement: { claims: { a: {} as unknown as string } } }],
      both,
      /must require a string/,
    ],
    [
      'claim asking for an empty array',
      [{ kind: 'oidc', requirement: { claims: { a: [] } } }],
      both,
      /must require a string/,
    ],
    [
      'same claim, two values',
      [
        { kind: 'oidc', requirement: { claims: { a: 'x' } } },
        { kind: 'oidc', requirement: { claims: { a: 'y' } } },
      ],
      both,
      /two different values/,
    ],
  ];

  it.each(refusals)('refuses %s', (_name, fragments, options, message) => {
    expect(() => compilePolicy(fragments, route, options)).toThrow(PolicyDefinitionError);
    expect(() => compilePolicy(fragments, route, options)).toThrow(message);
  });
});
