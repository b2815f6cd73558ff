import { describe, expect, it } from 'vitest';
import { htuMatches, requestPathOf } from './dpop-htu.js';

const ORIGINS = new Set(['https://api.example']);

describe('requestPathOf', () => {
  it.each([
    ['/v1/models', '/v1/models'],
    ['/v1/models?x=1#f', '/v1/models'],
    ['/v1/%6dodels', '/v1/models'],
    ['/v1/a%2fb', '/v1/a%2Fb'],
    ['/v1/.well-known/x', '/v1/.well-known/x'],
    ['/v1/a..b/c', '/v1/a..b/c'],
    ['/v1/...', '/v1/...'],
  ])('%s → %s', (target, path) => expect(requestPathOf(target)).toBe(path));

  // The router routes these raw paths to another handler than URL parsing would resolve them to.
  it.each([
    '/v1/admin/../models',
    '/v1/admin/%2e%2e/models',
    '/v1/admin/%2E./models',
    '/v1/./models',
    '/v1/%2e/models',
    '/v1/models/..',
    '/v1/models/.',
    '/v1\\models',
    'https://api.example/v1/models',
    '*',
    '',
  ])('%s matches no proof', (target) => expect(requestPathOf(target)).toBeUndefined());
});

describe('htuMatches', () => {
  it.each([
    ['https://api.example/v1/models', true],
    ['https://API.example:443/v1/models', true],
    ['https://api.example/v1/%6dodels?q=1#f', true],
    ['https://api.example/v1/other', false],
    ['https://other.example/v1/models', false],
    ['https://user@api.example/v1/models', false],
    ['http://api.example/v1/models', false],
    ['not a url', false],
  ])('%s → %s', (htu, expected) => {
    const path = requestPathOf('/v1/models');
    expect(path).toBeDefined();
    expect(htuMatches(htu, path ?? '', ORIGINS)).toBe(expected);
  });
});
