import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDevIdpClientsFile, parseDevIdpClientsConfig } from './clients-config.js';

const committed = fileURLToPath(new URL('../clients.json', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'dev-idp-clients-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const secret = 'dev-only-a-secret-of-at-least-32-chars';
const base = () => ({
  defaultResource: 'https://localhost:8443',
  resources: [{ identifier: 'https://localhost:8443', scopes: ['models:infer', 'models:read'] }],
  clients: [
    { clientId: 'svc', auth: 'client_secret_basic', clientSecret: secret, scopes: ['models:infer'] },
  ] as Record<string, unknown>[],
});

describe('dev IdP clients file', () => {
  it('parses the committed clients.json into a frozen config', () => {
    const config = loadDevIdpClientsFile(committed);
    expect(config.defaultResource).toBe('https://localhost:8443');
    expect(config.clients.map((c) => c.clientId)).toEqual([
      'demo-service',
      'reader',
      'demo-service-bound',
      'demo-workload-mtls',
    ]);
    expect(config.clients.find((c) => c.clientId === 'reader')?.scopes).toEqual(['models:read']);
    expect(config.clients.find((c) => c.clientId === 'demo-workload-mtls')).toMatchObject({
      auth: 'tls_client_auth',
      tlsClientAuthSanUri: 'spiffe://shield.local/demo',
      certificateBoundAccessTokens: true,
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.clients[0])).toBe(true);
    expect(config.resources[0]?.accessTokenTtlSeconds).toBe(300);
  });

  type Mutate = (c: ReturnType<typeof base>) => void;
  it.each<[string, Mutate, RegExp]>([
    ['an unknown top-level key', (c) => Object.assign(c, { allowAll: true }), /unknown option "allowAll"/],
    [
      'an unknown client key',
      (c) => Object.assign(c.clients[0]!, { skipAuth: true }),
      /clients\[0\]" has an unknown option "skipAuth"/,
    ],
    [
      'an http: resource',
      (c) => (c.resources[0]!.identifier = 'http://localhost:8443'),
      /resources\[0\]\.identifier" must be an https: URL/,
    ],
    [
      'a default resource not listed',
      (c) => (c.defaultResource = 'https://other'),
      /"clients\.defaultResource" must be one of/,
    ],
    ['a short secret', (c) => (c.clients[0]!.clientSecret = 'short'), /clientSecret" must be at least 32/],
    [
      'a missing secret',
      (c) => delete c.clients[0]!.clientSecret,
      /clientSecret" must be a non-empty string/,
    ],
    ['an unsupported auth method', (c) => (c.clients[0]!.auth = 'none'), /auth" must be one of/],
    [
      'a scope no resource defines',
      (c) => (c.clients[0]!.scopes = ['admin']),
      /"admin", which no resource defines/,
    ],
    ['a scope with a space', (c) => (c.clients[0]!.scopes = ['a b']), /invalid scope/],
    ['no scopes', (c) => (c.clients[0]!.scopes = []), /must not be empty/],
    [
      'a SAN with secret auth',
      (c) => (c.clients[0]!.tlsClientAuthSanUri = 'spiffe://x/y'),
      /only allowed with "auth": "tls_client_auth"/,
    ],
    [
      'a secret with mTLS auth',
      (c) => Object.assign(c.clients[0]!, { auth: 'tls_client_auth', tlsClientAuthSanUri: 'spiffe://x/y' }),
      /clientSecret" is only allowed/,
    ],
    [
      'tls_client_auth without a SAN',
      (c) => Object.assign(c.clients[0]!, { auth: 'tls_client_auth', clientSecret: undefined }),
      /tlsClientAuthSanUri" must be a non-empty string/,
    ],
    [
      'an invalid SPIFFE ID as SAN',
      (c) =>
        Object.assign(c.clients[0]!, {
          auth: 'tls_client_auth',
          clientSecret: undefined,
          tlsClientAuthSanUri: 'spiffe://Shield.Local/x',
        }),
      /tlsClientAuthSanUri" must be an absolute URI/,
    ],
    ['a bad client id', (c) => (c.clients[0]!.clientId = 'a b'), /clientId" must be 1-64 characters/],
    ['a duplicate client', (c) => c.clients.push({ ...c.clients[0]! }), /lists svc twice/],
    [
      'a non-boolean binding flag',
      (c) => (c.clients[0]!.certificateBoundAccessTokens = 'yes'),
      /certificateBoundAccessTokens" must be a boolean/,
    ],
    [
      'a TTL of a year',
      (c) => Object.assign(c.resources[0]!, { accessTokenTtlSeconds: 31_536_000 }),
      /accessTokenTtlSeconds" must be an integer/,
    ],
    [
      'a missing self-signed certificate',
      (c) =>
        Object.assign(c.clients[0]!, {
          auth: 'self_signed_tls_client_auth',
          clientSecret: undefined,
          selfSignedCertificateFile: 'nope.pem',
        }),
      /selfSignedCertificateFile" .* is not a readable PEM/,
    ],
  ])('refuses %s with a TypeError naming the field', (_name, mutate, message) => {
    const config = JSON.parse(JSON.stringify(base())) as ReturnType<typeof base>;
    mutate(config);
    const parse = () => parseDevIdpClientsConfig(JSON.parse(JSON.stringify(config)), dir);
    expect(parse).toThrow(TypeError);
    expect(parse).toThrow(message);
  });

  it.each<[string, Mutate, RegExp]>([
    [
      'an unknown access token format',
      (c) => Object.assign(c.resources[0]!, { accessTokenFormat: 'paseto' }),
      /accessTokenFormat" must be one of/,
    ],
    [
      'private_key_jwt without its public key',
      (c) => Object.assign(c.clients[0]!, { auth: 'private_key_jwt', clientSecret: undefined }),
      /clients\[0\]\.publicKeyFile" must be/,
    ],
    [
      'private_key_jwt with an unreadable public key',
      (c) =>
        Object.assign(c.clients[0]!, {
          auth: 'private_key_jwt',
          clientSecret: undefined,
          publicKeyFile: 'none.pem',
        }),
      /publicKeyFile" \(.*none\.pem\) is not a readable PEM public key/,
    ],
    [
      'a public key for another method',
      (c) => Object.assign(c.clients[0]!, { publicKeyFile: 'k.pem' }),
      /only allowed/,
    ],
    ['introspect not a boolean', (c) => Object.assign(c.clients[0]!, { introspect: 'yes' }), /introspect/],
  ])('introspection fields: refuses %s', (_name, mutate, message) => {
    const config = JSON.parse(JSON.stringify(base())) as ReturnType<typeof base>;
    mutate(config);
    expect(() => parseDevIdpClientsConfig(JSON.parse(JSON.stringify(config)), dir)).toThrow(message);
  });

  it('reads opaque resources, introspecting clients and private_key_jwt public keys', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, 'rs.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const config = base();
    Object.assign(config.resources[0]!, { accessTokenFormat: 'opaque' });
    config.clients.push({
      clientId: 'rs',
      auth: 'private_key_jwt',
      publicKeyFile: 'rs.pub.pem',
      scopes: ['models:read'],
      introspect: true,
    });
    const parsed = parseDevIdpClientsConfig(config, dir);
    expect(parsed.resources[0]?.accessTokenFormat).toBe('opaque');
    expect(parsed.clients[0]?.introspect).toBe(false);
    expect(parsed.clients[1]).toMatchObject({ auth: 'private_key_jwt', introspect: true });
    expect(parsed.clients[1]?.publicKeyPem).toContain('BEGIN PUBLIC KEY');
  });

  it('names the file when it is not JSON or missing', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ nope');
    expect(() => loadDevIdpClientsFile(file)).toThrow(`dev IdP clients file ${file} is not valid JSON`);
    expect(() => loadDevIdpClientsFile(join(dir, 'missing.json'))).toThrow(/missing\.json cannot be read/);
  });

  it('never puts a secret in an error message', () => {
    const config = base();
    const short = 'a-short-dev-secret-7x';
    config.clients[0]!.clientSecret = short;
    expect(() => parseDevIdpClientsConfig(config, dir)).toThrow(/clientSecret/);
    try {
      parseDevIdpClientsConfig(config, dir);
    } catch (err) {
      expect((err as Error).message).not.toContain(short);
    }
  });
});
