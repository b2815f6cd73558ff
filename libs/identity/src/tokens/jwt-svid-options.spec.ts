import { describe, expect, it } from 'vitest';
import { resolveJwtSvidOptions } from './jwt-svid-options.js';
import { resolveTokenVerifierOptions } from './token-verifier-options.js';

const bundles = { jwtBundles: () => new Map() };

describe('resolveJwtSvidOptions', () => {
  it('fills the defaults and makes one issuer entry per trust domain', () => {
    const r = resolveJwtSvidOptions('jwtSvids', {
      bundles,
      trustDomains: ['example.org', 'partner.example'],
      audience: 'https://api.example',
    });
    expect(r.audience).toEqual(['https://api.example']);
    expect(r.algorithms).toContain('ES256');
    expect(r.algorithms).not.toContain('HS256');
    expect(r.clockToleranceSeconds).toBe(5);
    expect(r.issuers.get('example.org')).toMatchObject({ issuer: 'spiffe://example.org', method: 'oidc' });
    expect([...r.issuers.keys()]).toEqual(['example.org', 'partner.example']);
  });

  it.each([
    [{ trustDomains: ['example.org'], audience: 'a' }, /"jwtSvids.bundles" must have jwtBundles\(\)/],
    [{ bundles, trustDomains: [], audience: 'a' }, /"jwtSvids.trustDomains" must not be empty/],
    [{ bundles, trustDomains: ['spiffe://example.org'], audience: 'a' }, /trust domain names/],
    [{ bundles, trustDomains: ['Example.org'], audience: 'a' }, /trust domain names/],
    [{ bundles, trustDomains: ['example.org'], audience: [] }, /"jwtSvids.audience" must not be empty/],
    [{ bundles, trustDomains: ['example.org'], audience: 'a', algorithms: ['HS256'] }, /must be among/],
    [{ bundles, trustDomains: ['example.org'], audience: 'a', algorithms: ['none'] }, /must be among/],
    [
      { bundles, trustDomains: ['example.org'], audience: 'a', clockToleranceSeconds: 301 },
      /clockToleranceSeconds/,
    ],
    [{ bundles, trustDomains: ['example.org'], audience: 'a', issuer: 'x' }, /unknown option "issuer"/],
  ])('refuses %j', (raw, message) => {
    expect(() => resolveJwtSvidOptions('jwtSvids', raw)).toThrow(message);
  });
});

describe('tokens with jwtSvids', () => {
  it('accepts an empty issuer list when JWT-SVIDs are configured, not otherwise', () => {
    const jwtSvids = { bundles, trustDomains: ['example.org'], audience: 'https://api.example' };
    expect(resolveTokenVerifierOptions({ issuers: [], jwtSvids }).jwtSvids?.trustDomains).toEqual([
      'example.org',
    ]);
    expect(() => resolveTokenVerifierOptions({ issuers: [] })).toThrow(/"issuers" must be a non-empty array/);
  });
});
