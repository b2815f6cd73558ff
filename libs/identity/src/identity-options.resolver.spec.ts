import { describe, expect, it } from 'vitest';
import { resolveIdentityOptions } from './identity-options.resolver.js';

const jwk = {
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
  kid: 'k1',
};
const oidc = { issuers: [{ issuer: 'https://idp.local', audience: 'api', jwks: { keys: [jwk] } }] };

describe('resolveIdentityOptions', () => {
  it('fills defaults and freezes the result', () => {
    const r = resolveIdentityOptions({ oidc });
    expect(r.roleClaimPath).toEqual(['roles']);
    expect(r.mtls).toBeUndefined();
    expect(r.audit).toEqual({ sink: undefined, includePublic: false });
    expect(r.oidc?.maxTokenBytes).toBe(8192);
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.audit)).toBe(true);
    expect(Object.isFrozen(r.roleClaimPath)).toBe(true);
  });

  it('parses mtls trust domains and the role claim path, deduplicated and frozen', () => {
    const r = resolveIdentityOptions({
      mtls: { trustDomains: ['a.local', 'a.local', 'b.local'] },
      roleClaimPath: 'realm_access.roles',
    });
    expect(r.mtls?.trustDomains).toEqual(['a.local', 'b.local']);
    expect(Object.isFrozen(r.mtls?.trustDomains)).toBe(true);
    expect(r.roleClaimPath).toEqual(['realm_access', 'roles']);
  });

  it('does not let later changes to the raw options change the resolved ones', () => {
    const raw = { mtls: { trustDomains: ['a.local'] } };
    const r = resolveIdentityOptions(raw);
    raw.mtls.trustDomains.push('evil.example');
    expect(r.mtls?.trustDomains).toEqual(['a.local']);
  });

  it.each<[string, unknown, RegExp]>([
    ['not an object', 'oidc', /must be an object/],
    ['null', null, /must be an object/],
    ['empty', {}, /need "oidc" or "mtls"/],
    ['unknown key', { mtls: {}, allowAnonymous: true }, /unknown option "allowAnonymous"/],
    ['mtls not an object', { mtls: true }, /"mtls" must be an object/],
    ['trust domain with a scheme', { mtls: { trustDomains: ['spiffe://a'] } }, /"mtls.trustDomains"/],
    ['audit not an object', { mtls: {}, audit: 'stdout' }, /"audit" must be an object/],
    [
      'audit.includePublic not boolean',
      { mtls: {}, audit: { includePublic: 'yes' } },
      /"audit.includePublic" must be a boolean/,
    ],
    ['roleClaimPath empty', { mtls: {}, roleClaimPath: '' }, /"roleClaimPath"/],
    ['roleClaimPath too deep', { mtls: {}, roleClaimPath: 'a.b.c.d.e.f.g.h.i' }, /"roleClaimPath"/],
    ['oidc with no issuer', { oidc: { issuers: [] } }, /"oidc.issuers" must be a non-empty array/],
  ])('refuses %s with a TypeError', (_name, raw, message) => {
    expect(() => resolveIdentityOptions(raw)).toThrow(TypeError);
    expect(() => resolveIdentityOptions(raw)).toThrow(message);
  });
});
