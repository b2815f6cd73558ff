import { describe, expect, it } from 'vitest';
import { resolveTokenVerifierOptions } from '../tokens/token-verifier-options.js';
import {
  resolveResourceMetadataOptions,
  type ResourceMetadataContext,
} from './resource-metadata.resolver.js';

const JWKS = { keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }] };
const oidc = resolveTokenVerifierOptions({
  issuers: [
    { issuer: 'https://a.example', resource: 'https://api.example/v1', jwks: JWKS },
    { issuer: 'https://b.example', audience: ['https://api.example/v1', 'x'], jwks: JWKS },
    { issuer: 'https://c.example', audience: 'other', jwks: JWKS },
  ],
});
const ctx: ResourceMetadataContext = { oidc, mtls: false, dpopAlgorithms: undefined };

describe('resolveResourceMetadataOptions', () => {
  it('derives the document and the well-known path (RFC 9728 §3.1)', () => {
    const r = resolveResourceMetadataOptions({ resource: 'https://api.example/v1' }, ctx);
    expect(r.path).toBe('/.well-known/oauth-protected-resource/v1');
    expect(r.url).toBe('https://api.example/.well-known/oauth-protected-resource/v1');
    expect(r.maxAgeSeconds).toBe(3600);
    expect(r.document).toEqual({
      resource: 'https://api.example/v1',
      // Only the issuers that accept the resource as audience.
      authorization_servers: ['https://a.example', 'https://b.example'],
      bearer_methods_supported: ['header'],
      tls_client_certificate_bound_access_tokens: false,
    });
    expect(Object.isFrozen(r.document)).toBe(true);
  });

  it.each([
    ['https://api.example', '/.well-known/oauth-protected-resource'],
    ['https://api.example/', '/.well-known/oauth-protected-resource'],
    ['https://api.example/v1/', '/.well-known/oauth-protected-resource/v1'],
  ])('resource %s is served at %s', (resource, path) => {
    const own = resolveTokenVerifierOptions({
      issuers: [{ issuer: 'https://a.example', resource, jwks: JWKS }],
    });
    expect(resolveResourceMetadataOptions({ resource }, { ...ctx, oidc: own }).path).toBe(path);
  });

  it('writes DPoP algorithms, the RFC 8705 flag and the optional members when given', () => {
    const r = resolveResourceMetadataOptions(
      {
        resource: 'https://api.example/v1',
        authorizationServers: ['https://b.example'],
        scopesSupported: ['models:infer', 'models:infer'],
        resourceName: 'API',
        resourceDocumentation: 'https://docs.example/api',
      },
      { oidc, mtls: true, dpopAlgorithms: ['ES256', 'EdDSA'] },
    );
    expect(r.document).toEqual({
      resource: 'https://api.example/v1',
      authorization_servers: ['https://b.example'],
      bearer_methods_supported: ['header'],
      scopes_supported: ['models:infer'],
      dpop_signing_alg_values_supported: ['ES256', 'EdDSA'],
      tls_client_certificate_bound_access_tokens: true,
      resource_name: 'API',
      resource_documentation: 'https://docs.example/api',
    });
  });

  it.each([
    ['not an object', 'https://api.example/v1', /resourceMetadata/],
    ['an unknown key', { resource: 'https://api.example/v1', resources: [] }, /resources/],
    ['http:', { resource: 'http://api.example/v1' }, /resourceMetadata\.resource/],
    ['a fragment', { resource: 'https://api.example/v1#x' }, /resourceMetadata\.resource" must/],
    ['a query', { resource: 'https://api.example/v1?x=1' }, /no query, fragment/],
    ['a resource no issuer accepts', { resource: 'https://api.example/v2' }, /not accepted as audience/],
    [
      'an unknown authorization server',
      { resource: 'https://api.example/v1', authorizationServers: ['https://c.example/'] },
      /authorizationServers\[0\]/,
    ],
    ['a bad scope', { resource: 'https://api.example/v1', scopesSupported: ['a b'] }, /scopesSupported/],
    ['a negative max age', { resource: 'https://api.example/v1', maxAgeSeconds: -1 }, /maxAgeSeconds/],
    [
      'a signed form without issuer',
      { resource: 'https://api.example/v1', signed: { key: { pem: 'x' } } },
      /signed\.issuer/,
    ],
    [
      'a signed form with two key sources',
      {
        resource: 'https://api.example/v1',
        signed: { issuer: 'https://s.example', key: { pem: 'x', file: 'y' } },
      },
      /signed\.key/,
    ],
    [
      'a symmetric signing algorithm',
      {
        resource: 'https://api.example/v1',
        signed: { issuer: 'https://s.example', key: { pem: 'x' }, alg: 'HS256' },
      },
      /signed\.alg/,
    ],
  ])('refuses %s with a TypeError naming the field', (_name, raw, message) => {
    expect(() => resolveResourceMetadataOptions(raw, ctx)).toThrow(TypeError);
    expect(() => resolveResourceMetadataOptions(raw, ctx)).toThrow(message);
  });

  it('refuses any resource when no oidc issuer is configured', () => {
    expect(() =>
      resolveResourceMetadataOptions({ resource: 'https://api.example/v1' }, { ...ctx, oidc: undefined }),
    ).toThrow(/not accepted as audience by any "oidc" issuer/);
  });
});
