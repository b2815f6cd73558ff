import { describe, expect, it } from 'vitest';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import type { PeerIdentity } from './peer-certificate.js';
import { compilePolicy } from './policy.compiler.js';
import { mtls, oidc, saml } from './policy.decorator.js';
import type { PolicyAlternative } from './policy.interface.js';
import {
  claimAt,
  claimSatisfies,
  matchMtls,
  matchToken,
  rolesAt,
  type TokenFacts,
} from './policy.matcher.js';

const options = {
  oidc: { issuers: [] },
  mtls: { trustDomains: undefined },
  audit: { sink: undefined, includePublic: false },
  roleClaimPath: ['roles'],
} as unknown as ResolvedIdentityOptions;

function compiled(...alternatives: PolicyAlternative[]) {
  const p = compilePolicy([{ kind: 'allow', alternatives }], 'GET /x', options);
  if (!p) throw new Error('no policy');
  return p;
}

function facts(over: Partial<TokenFacts> = {}): TokenFacts {
  return {
    method: 'oidc',
    issuer: 'https://idp.local',
    scopes: new Set(['models:infer']),
    roles: new Set(['ops']),
    claims: { tenant: 'acme', groups: ['a', 'b'], org: { id: 7 } },
    bound: false,
    dpopBound: false,
    ...over,
  };
}

const peer = (over: Partial<PeerIdentity> = {}): PeerIdentity =>
  ({
    spiffeId: 'spiffe://shield.local/ns/prod/gw',
    trustDomain: 'shield.local',
    sans: ['uri:spiffe://shield.local/ns/prod/gw', 'dns:gw.shield.local'],
    ...over,
  }) as PeerIdentity;

describe('matchToken', () => {
  const cases: [string, PolicyAlternative[], Partial<TokenFacts>, string | undefined][] = [
    ['scope present', [oidc({ scopes: ['models:infer'] })], {}, undefined],
    ['scope missing', [oidc({ scopes: ['models:admin'] })], {}, 'ERR_INSUFFICIENT_SCOPE'],
    [
      'one alternative of two passes',
      [oidc({ scopes: ['x'] }), oidc({ scopes: ['models:infer'] })],
      {},
      undefined,
    ],
    ['role present', [oidc({ roles: ['ops'] })], {}, undefined],
    ['role missing', [oidc({ roles: ['admin'] })], {}, 'ERR_CLAIMS_NOT_SATISFIED'],
    ['claim equal', [oidc({ claims: { tenant: 'acme' } })], {}, undefined],
    ['claim differs', [oidc({ claims: { tenant: 'evil' } })], {}, 'ERR_CLAIMS_NOT_SATISFIED'],
    ['nested claim', [oidc({ claims: { 'org.id': 7 } })], {}, undefined],
    [
      'nested claim as string is not the number',
      [oidc({ claims: { 'org.id': '7' } })],
      {},
      'ERR_CLAIMS_NOT_SATISFIED',
    ],
    ['array claim contains', [oidc({ claims: { groups: 'b' } })], {}, undefined],
    ['array claim contains all', [oidc({ claims: { groups: ['a', 'b'] } })], {}, undefined],
    ['array claim lacks one', [oidc({ claims: { groups: ['a', 'c'] } })], {}, 'ERR_CLAIMS_NOT_SATISFIED'],
    ['bound token required, not bound', [oidc({ boundToken: true })], {}, 'ERR_TOKEN_BINDING_REQUIRED'],
    ['bound token required, bound', [oidc({ boundToken: true })], { bound: true }, undefined],
    [
      'bound token required, DPoP-bound only',
      [oidc({ boundToken: true })],
      { dpopBound: true },
      'ERR_TOKEN_BINDING_REQUIRED',
    ],
    [
      'sender-constrained, plain bearer',
      [oidc({ senderConstrained: true })],
      {},
      'ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED',
    ],
    ['sender-constrained, DPoP-bound', [oidc({ senderConstrained: true })], { dpopBound: true }, undefined],
    [
      'sender-constrained, certificate-bound',
      [oidc({ senderConstrained: true })],
      { bound: true },
      undefined,
    ],
    ['issuer not listed', [oidc({ issuers: ['https://other'] })], {}, 'ERR_CALLER_NOT_ALLOWED'],
    ['issuer listed', [oidc({ issuers: ['https://idp.local'] })], {}, undefined],
    ['saml token on an oidc-only route', [oidc()], { method: 'saml' }, 'ERR_AUTH_METHOD_NOT_ALLOWED'],
    ['saml token on a saml route', [oidc({ scopes: ['nope'] }), saml()], { method: 'saml' }, undefined],
    ['token on an mTLS-only route', [mtls()], {}, 'ERR_AUTH_METHOD_NOT_ALLOWED'],
  ];
  it.each(cases)('%s', (_name, alternatives, over, code) => {
    const p = compiled(...alternatives);
    expect(matchToken(p.token, facts(over))?.code).toBe(code);
  });

  it('names the scopes needed in the refusal (RFC 6750 §3 scope attribute)', () => {
    const p = compiled(oidc({ scopes: ['models:infer', 'models:admin'] }));
    expect(matchToken(p.token, facts())?.details.scope).toBe('models:infer models:admin');
  });

  it('reports the first alternative of the method that failed', () => {
    const p = compiled(oidc({ roles: ['admin'] }), oidc({ scopes: ['x'] }));
    expect(matchToken(p.token, facts())?.code).toBe('ERR_CLAIMS_NOT_SATISFIED');
  });
});

describe('matchMtls', () => {
  const cases: [string, PolicyAlternative[], Partial<PeerIdentity>, string | undefined][] = [
    ['any verified certificate', [mtls()], {}, undefined],
    ['SPIFFE ID listed', [mtls({ spiffeIds: ['spiffe://shield.local/ns/prod/gw'] })], {}, undefined],
    [
      'SPIFFE ID not listed',
      [mtls({ spiffeIds: ['spiffe://shield.local/ns/prod/other'] })],
      {},
      'ERR_CALLER_NOT_ALLOWED',
    ],
    [
      'SPIFFE ID prefix is not a match',
      [mtls({ spiffeIds: ['spiffe://shield.local/ns/prod'] })],
      {},
      'ERR_CALLER_NOT_ALLOWED',
    ],
    ['trust domain listed', [mtls({ trustDomains: ['shield.local'] })], {}, undefined],
    ['trust domain not listed', [mtls({ trustDomains: ['partners.example'] })], {}, 'ERR_CALLER_NOT_ALLOWED'],
    [
      'no SPIFFE ID, trust domain list',
      [mtls({ trustDomains: ['shield.local'] })],
      { spiffeId: undefined, trustDomain: undefined, sans: [] },
      'ERR_CALLER_NOT_ALLOWED',
    ],
    ['DNS SAN listed (case-insensitive)', [mtls({ sans: ['dns:GW.shield.local'] })], {}, undefined],
    ['DNS SAN not listed', [mtls({ sans: ['dns:other.local'] })], {}, 'ERR_CALLER_NOT_ALLOWED'],
  ];
  it.each(cases)('%s', (_name, alternatives, over, code) => {
    const p = compiled(...alternatives);
    expect(matchMtls(p.mtls, peer(over))?.code).toBe(code);
  });
});

describe('claim helpers', () => {
  it('reads own members only', () => {
    const claims = JSON.parse('{"a":{"b":1},"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(claimAt(claims, ['a', 'b'])).toBe(1);
    expect(claimAt(claims, ['toString'])).toBeUndefined();
    expect(claimAt(claims, ['a', 'constructor'])).toBeUndefined();
    expect(claimAt({ a: ['x'] }, ['a', '0'])).toBeUndefined();
  });

  it('reads roles from an array or a single string, ignoring non-strings', () => {
    expect([...rolesAt({ realm_access: { roles: ['a', 1, 'b'] } }, ['realm_access', 'roles'])]).toEqual([
      'a',
      'b',
    ]);
    expect([...rolesAt({ roles: 'a' }, ['roles'])]).toEqual(['a']);
    expect([...rolesAt({ roles: { a: true } }, ['roles'])]).toEqual([]);
  });

  it.each([
    ['x', 'x', true],
    ['x', 'y', false],
    [['x', 'y'], 'y', true],
    [['x', 'y'], ['x', 'y'], true],
    ['x', ['x'], false],
    [true, true, true],
    ['true', true, false],
  ] as const)('claimSatisfies(%j, %j) = %s', (value, expected, result) => {
    expect(claimSatisfies(value, expected)).toBe(result);
  });
});
