/**
 * RFC 9728, the rest: a resource at the origin's root (metadata at the bare well-known path), the
 * signed form (`signed_metadata`, §2.2) checked with the signer's public key, both HTTP adapters,
 * a module without `resourceMetadata` adding no route and no challenge parameter (good guest),
 * and the configurations the app refuses to start with.
 */
import 'reflect-metadata';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, jwtVerify, type JWK } from 'jose';
import type { IdentityModuleOptions } from '@inference-shield/identity';
import { fixtureModule, ROUTES } from './support/fixture-app.js';
import { startApp, testPki, type TestApp } from '../support/harness.js';
import type { TestPki } from '@inference-shield/dev-pki';

const root = mkdtempSync(join(tmpdir(), 'discovery-signed-e2e-'));
const ISSUER = 'https://idp.shield.test';
const SIGNER = 'https://metadata-signer.shield.test';
const RESOURCE = 'https://api.shield.test';
const apps: TestApp[] = [];

let pki: TestPki;
let issuerJwk: JWK;
const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signerKeyFile = join(root, 'signer-key.pem');

function identity(extra: Partial<IdentityModuleOptions> = {}, issuer: Record<string, unknown> = {}) {
  return {
    oidc: { issuers: [{ issuer: ISSUER, resource: RESOURCE, jwks: { keys: [issuerJwk] }, ...issuer }] },
    mtls: {},
    ...extra,
  } as IdentityModuleOptions;
}

async function start(options: IdentityModuleOptions, adapter: 'express' | 'fastify' = 'express') {
  const app = await startApp(fixtureModule(options), {
    pki,
    adapter,
    nest: { abortOnError: false },
  });
  apps.push(app);
  return app;
}

beforeAll(async () => {
  pki = await testPki('discovery-signed');
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  issuerJwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  writeFileSync(signerKeyFile, signer.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  rmSync(root, { recursive: true, force: true });
});

describe.each(['express', 'fastify'] as const)('a resource at the root, signed metadata (%s)', (adapter) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await start(
      identity({
        resourceMetadata: {
          resource: RESOURCE,
          maxAgeSeconds: 600,
          signed: { issuer: SIGNER, key: { file: signerKeyFile }, kid: 'meta-1' },
        },
      }),
      adapter,
    );
  });

  it('serves the document at /.well-known/oauth-protected-resource with signed_metadata', async () => {
    const r = await app.call('/.well-known/oauth-protected-resource');
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('public, max-age=600');
    const { signed_metadata: jwt, ...plain } = r.body;
    expect(plain).toEqual({
      resource: RESOURCE,
      authorization_servers: [ISSUER],
      bearer_methods_supported: ['header'],
      tls_client_certificate_bound_access_tokens: true,
    });
    // RFC 9728 §2.2: a JWT with `iss`, its claims the metadata members; verified with the signer's key.
    const { payload, protectedHeader } = await jwtVerify(String(jwt), signer.publicKey, { issuer: SIGNER });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: 'meta-1' });
    expect(payload).toMatchObject(plain);
  });

  it('every 401 challenge names it', async () => {
    const r = await app.call(ROUTES.infer, { method: 'POST' });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe(
      `Bearer resource_metadata="${RESOURCE}/.well-known/oauth-protected-resource"`,
    );
  });
});

describe('with dpop configured', () => {
  it('dpop_signing_alg_values_supported lists the proof algorithms the module accepts', async () => {
    const app = await start(
      identity({
        dpop: { origin: RESOURCE, algorithms: ['ES256', 'EdDSA'] },
        resourceMetadata: { resource: RESOURCE, certificateBoundAccessTokens: false },
      }),
    );
    const r = await app.call('/.well-known/oauth-protected-resource');
    expect(r.body).toMatchObject({
      dpop_signing_alg_values_supported: ['ES256', 'EdDSA'],
      tls_client_certificate_bound_access_tokens: false,
    });
  });
});

describe('without resourceMetadata (good guest)', () => {
  it('no route is added and challenges carry no resource_metadata', async () => {
    const app = await start(identity());
    expect((await app.call('/.well-known/oauth-protected-resource')).status).toBe(404);
    const r = await app.call(ROUTES.infer, { method: 'POST' });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer');
  });
});

describe('start-up refusals', () => {
  it.each([
    [
      'an http: resource',
      () => identity({ resourceMetadata: { resource: 'http://api.shield.test' } }),
      /resourceMetadata\.resource/,
    ],
    [
      'a resource with a query',
      () =>
        identity(
          { resourceMetadata: { resource: `${RESOURCE}/?tenant=a` } },
          { resource: `${RESOURCE}/?tenant=a` },
        ),
      /resourceMetadata\.resource" must have no query/,
    ],
    [
      'a resource no issuer accepts as audience',
      () => identity({ resourceMetadata: { resource: 'https://elsewhere.shield.test' } }),
      /not accepted as audience by any "oidc" issuer/,
    ],
    [
      'an authorization server that is not a configured issuer',
      () =>
        identity({
          resourceMetadata: { resource: RESOURCE, authorizationServers: ['https://evil.example'] },
        }),
      /authorizationServers\[0\]/,
    ],
    [
      'an unknown key',
      () => identity({ resourceMetadata: { resource: RESOURCE, signedMetadata: true } as never }),
      /signedMetadata/,
    ],
    [
      'a signing key that cannot be read',
      () =>
        identity({
          resourceMetadata: {
            resource: RESOURCE,
            signed: { issuer: SIGNER, key: { file: join(root, 'none.pem') } },
          },
        }),
      /none\.pem/,
    ],
    [
      'a signing key that is not a key',
      () =>
        identity({
          resourceMetadata: { resource: RESOURCE, signed: { issuer: SIGNER, key: { pem: 'not a pem' } } },
        }),
      /resourceMetadata\.signed\.key" does not hold a readable private key/,
    ],
  ])('refuses %s', async (_name, build, message) => {
    await expect(start(build())).rejects.toThrow(message);
  });
});
