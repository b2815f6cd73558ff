import { describe, expect, it } from 'vitest';
import { resolveIntrospectionOptions } from './introspection-options.resolver.js';

const pkjwt = { method: 'private_key_jwt', key: { file: '/run/secrets/k.pem' } };
const base = (extra: Record<string, unknown> = {}) => ({
  endpoint: 'https://idp.example/token/introspection',
  clientId: 'rs',
  clientAuth: pkjwt,
  ...extra,
});

describe('resolveIntrospectionOptions', () => {
  it('fills the defaults and takes the issuer CA', () => {
    expect(resolveIntrospectionOptions('i', base(), { pem: 'CA' })).toEqual({
      endpoint: 'https://idp.example/token/introspection',
      clientId: 'rs',
      clientAuth: {
        method: 'private_key_jwt',
        key: { file: '/run/secrets/k.pem' },
        alg: undefined,
        kid: undefined,
      },
      ca: { pem: 'CA' },
      timeoutMs: 3000,
      maxCacheSeconds: 60,
      maxConcurrent: 32,
    });
  });

  it.each([
    ['tls_client_auth', { method: 'tls_client_auth', cert: 'c.pem', key: 'k.pem' }],
    [
      'client_secret_basic from env',
      { method: 'client_secret_basic', secret: { env: 'S' }, allowClientSecret: true },
    ],
    [
      'client_secret_basic from a file',
      { method: 'client_secret_basic', secret: { file: '/s' }, allowClientSecret: true },
    ],
    ['private_key_jwt with alg and kid', { ...pkjwt, alg: 'ES384', kid: 'k1' }],
  ])('accepts %s', (_name, clientAuth) => {
    expect(resolveIntrospectionOptions('i', base({ clientAuth }), undefined).clientAuth.method).toBe(
      clientAuth.method,
    );
  });

  it.each([
    [
      'a query in the endpoint',
      base({ endpoint: 'https://idp.example/i?secret=x' }),
      /no query, fragment or credentials/,
    ],
    ['an http: endpoint', base({ endpoint: 'http://idp.example/i' }), /"i\.endpoint"/],
    [
      'credentials in the endpoint',
      base({ endpoint: 'https://u:p@idp.example/i' }),
      /"i\.endpoint" must not carry credentials/,
    ],
    [
      'a fragment in the endpoint',
      base({ endpoint: 'https://idp.example/i#x' }),
      /"i\.endpoint" must not have a fragment/,
    ],
    ['an empty client id', base({ clientId: '' }), /"i\.clientId"/],
    ['an unknown key', base({ retries: 3 }), /retries/],
    ['no client auth', base({ clientAuth: undefined }), /"i\.clientAuth"/],
    ['an unknown method', base({ clientAuth: { method: 'none' } }), /"i\.clientAuth\.method"/],
    ['a symmetric assertion alg', base({ clientAuth: { ...pkjwt, alg: 'HS256' } }), /"i\.clientAuth\.alg"/],
    [
      'a key given two ways',
      base({ clientAuth: { ...pkjwt, key: { file: 'a', pem: 'b' } } }),
      /"i\.clientAuth\.key"/,
    ],
    [
      'tls_client_auth without cert',
      base({ clientAuth: { method: 'tls_client_auth', key: 'k' } }),
      /clientAuth\.cert/,
    ],
    [
      'a secret without the opt-in',
      base({ clientAuth: { method: 'client_secret_basic', secret: { env: 'S' } } }),
      /allowClientSecret: true/,
    ],
    [
      'a bad environment variable name',
      base({
        clientAuth: { method: 'client_secret_basic', secret: { env: 'A-B' }, allowClientSecret: true },
      }),
      /secret\.env/,
    ],
    ['a timeout of 10 ms', base({ timeoutMs: 10 }), /"i\.timeoutMs"/],
    ['a cache of a day', base({ maxCacheSeconds: 86_400 }), /"i\.maxCacheSeconds"/],
    ['no concurrency', base({ maxConcurrent: 0 }), /"i\.maxConcurrent"/],
    ['a bare-string CA', base({ ca: 'PEM' }), /"i\.ca"/],
  ])('refuses %s with a TypeError naming the field', (_name, raw, message) => {
    expect(() => resolveIntrospectionOptions('i', raw, undefined)).toThrow(TypeError);
    expect(() => resolveIntrospectionOptions('i', raw, undefined)).toThrow(message);
  });

  it('never quotes a literal secret', () => {
    const secret = 'dev-only-literal-secret-0123456789';
    const raw = base({ clientAuth: { method: 'client_secret_basic', secret, allowClientSecret: true } });
    expect(() => resolveIntrospectionOptions('i', raw, undefined)).toThrow(/not the secret itself/);
    try {
      resolveIntrospectionOptions('i', raw, undefined);
    } catch (err) {
      expect((err as Error).message).not.toContain(secret);
    }
  });
});
