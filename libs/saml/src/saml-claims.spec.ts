import { describe, expect, it } from 'vitest';
import { mapSamlAttributes } from './saml-claims.js';

const claims = {
  defaultScopes: ['openid'],
  defaultRoles: [],
  rules: [
    { attribute: 'groups', equals: 'admins', scopes: ['models:admin'], roles: ['admin'] },
    { attribute: 'groups', equals: 'users', scopes: ['models:infer'], roles: [] },
    { attribute: 'dept', equals: 'ml', scopes: ['models:infer'], roles: ['ml'] },
  ],
};

describe('mapSamlAttributes', () => {
  it.each<[string, Record<string, string[]>, string[], string[]]>([
    ['no attributes: defaults only', {}, ['openid'], []],
    ['one matching value', { groups: ['users'] }, ['openid', 'models:infer'], []],
    [
      'grants add up, without duplicates',
      { groups: ['admins', 'users'], dept: ['ml'] },
      ['openid', 'models:admin', 'models:infer'],
      ['admin', 'ml'],
    ],
    ['comparison is exact', { groups: ['Admins', 'admins '] }, ['openid'], []],
    ['a value under another attribute does not match', { dept: ['admins'] }, ['openid'], []],
  ])('%s', (_name, attrs, scopes, roles) => {
    expect(mapSamlAttributes(claims, new Map(Object.entries(attrs)))).toEqual({ scopes, roles });
  });
});
