/**
 * RFC 7662 client authentication, end to end against the real dev IdP: `tls_client_auth` (RFC 8705
 * §2.1, the resource server's certificate in the handshake) and the explicit `client_secret_basic`
 * opt-in (the secret in the Authorization header, never in the URL, never logged), a resource
 * server whose key the IdP does not know (503, not 200 and not 401), and the start-up refusals.
 */
import 'reflect-metadata';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdentityModuleOptions } from '@inference-shield/identity';
import { TOKEN_VERIFIER, type TokenVerifier } from '@inference-shield/identity/internal';
import { fixtureModule, ROUTES } from './support/fixture-app.js';
import { createSharedPki, type SharedPki } from './support/idp-pki.js';
import {
  RESOURCES,
  RS_SECRET,
  startIntrospectionIdp,
  type IntrospectionIdp,
} from './support/introspection-idp.js';
import { CaptureLogger, startApp, type TestApp } from '../support/harness.js';

const root = mkdtempSync(join(tmpdir(), 'introspection-auth-e2e-'));
const SECRET_ENV = 'SHIELD_TEST_INTROSPECTION_SECRET';

let shared: SharedPki;
let idp: IntrospectionIdp;
const apps: TestApp[] = [];

function options(introspection: Record<string, unknown>, issuerExtra: Record<string, unknown> = {}) {
  return {
    oidc: {
      issuers: [
        {
          issuer: idp.idp.issuer,
          resource: RESOURCES.opaque,
          ca: { pem: idp.idp.caPem },
          introspection: { endpoint: idp.endpoint, timeoutMs: 2000, ...introspection },
          ...issuerExtra,
        },
      ],
      opaqueTokenIssuer: idp.idp.issuer,
    },
    mtls: { trustDomains: ['shield.local'] },
  } as unknown as IdentityModuleOptions;
}

async function start(identity: IdentityModuleOptions, logger = new CaptureLogger()): Promise<TestApp> {
  const app = await startApp(fixtureModule(identity), {
    pki: shared.pki,
    mtls: 'optional',
    logger,
    // A refused start-up must reject app.init(), not abort the test worker.
    nest: { abortOnError: false },
  });
  apps.push(app);
  return app;
}

beforeAll(async () => {
  shared = await createSharedPki(root);
  idp = await startIntrospectionIdp(root, 'idp', shared);
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await idp?.close();
  delete process.env[SECRET_ENV];
  rmSync(root, { recursive: true, force: true });
});

describe('tls_client_auth (RFC 8705 §2.1)', () => {
  it('the resource server authenticates with its certificate: an opaque token is accepted', async () => {
    const app = await start(
      options({ clientId: 'rs-mtls', clientAuth: { method: 'tls_client_auth', ...idp.rsMtls } }),
    );
    const token = await idp.opaqueToken(RESOURCES.opaque);
    const r = await app.call(ROUTES.infer, { method: 'POST', token });
    expect(r.status).toBe(200);
    expect(app.app.get<TokenVerifier>(TOKEN_VERIFIER).stats().introspection?.calls).toBe(1);
  });
});

describe('client_secret_basic, only as an explicit opt-in', () => {
  it('is accepted with allowClientSecret; the secret travels in the Authorization header only', async () => {
    process.env[SECRET_ENV] = RS_SECRET;
    const logger = new CaptureLogger();
    const app = await start(
      options({
        clientId: 'rs-secret',
        clientAuth: { method: 'client_secret_basic', secret: { env: SECRET_ENV }, allowClientSecret: true },
      }),
      logger,
    );
    // What undici sends for our introspection call, observed on its own diagnostics channel.
    const seen: { path: string; headers: string; body: string }[] = [];
    const onCreate = (message: unknown): void => {
      const request = (
        message as { request: { origin: string; path: string; headers: unknown; body: unknown } }
      ).request;
      if (!`${request.origin}${request.path}`.startsWith(idp.endpoint)) return;
      seen.push({
        path: request.path,
        headers: JSON.stringify(request.headers),
        body: typeof request.body === 'string' ? request.body : String(request.body ?? ''),
      });
    };
    subscribe('undici:request:create', onCreate);
    let status: number;
    try {
      const token = await idp.opaqueToken(RESOURCES.opaque);
      status = (await app.call(ROUTES.infer, { method: 'POST', token })).status;
    } finally {
      unsubscribe('undici:request:create', onCreate);
    }
    expect(status).toBe(200);
    expect(seen).toHaveLength(1);
    const sent = seen[0];
    // RFC 6749 §2.3.1: Basic of the form-urlencoded client_id and secret.
    const basic = /"Basic ([A-Za-z0-9+/=]+)"/.exec(sent?.headers ?? '')?.[1] ?? '';
    const [id, secret] = Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent);
    expect({ id, secret }).toEqual({ id: 'rs-secret', secret: RS_SECRET });
    for (const form of [RS_SECRET, encodeURIComponent(RS_SECRET), basic]) {
      expect(sent?.path).not.toContain(form);
      expect(sent?.body).not.toContain(form);
    }
    expect(sent?.path).toBe(new URL(idp.endpoint).pathname);
    for (const line of logger.lines) {
      expect(line).not.toContain(RS_SECRET);
      expect(line).not.toContain(basic);
    }
  });
});

describe('a client authentication the IdP refuses', () => {
  it('is 503 ERR_INTROSPECTION_UNAVAILABLE (the token cannot be checked), never 200 or 401', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const wrongKey = join(root, 'wrong-key.pem');
    writeFileSync(wrongKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const logger = new CaptureLogger();
    const app = await start(
      options({ clientId: 'rs-pkjwt', clientAuth: { method: 'private_key_jwt', key: { file: wrongKey } } }),
      logger,
    );
    const token = await idp.opaqueToken(RESOURCES.opaque);
    const r = await app.call(ROUTES.infer, { method: 'POST', token });
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 503,
      code: 'ERR_INTROSPECTION_UNAVAILABLE',
    });
    expect(logger.lines.some((l) => l.includes('HTTP 401'))).toBe(true);
  });
});

describe('start-up refusals', () => {
  const pkjwt = () => ({
    clientId: 'rs-pkjwt',
    clientAuth: { method: 'private_key_jwt', key: { file: idp.rsPrivateKeyFile } },
  });

  it.each([
    [
      'client_secret_basic without allowClientSecret',
      () =>
        options({
          clientId: 'rs-secret',
          clientAuth: { method: 'client_secret_basic', secret: { env: SECRET_ENV } },
        }),
      /allowClientSecret/,
    ],
    [
      'a literal secret in the options',
      () =>
        options({
          clientId: 'rs-secret',
          clientAuth: { method: 'client_secret_basic', secret: RS_SECRET, allowClientSecret: true },
        }),
      /secret" must be \{ env/,
    ],
    [
      'an http: endpoint',
      () => options({ ...pkjwt(), endpoint: idp.endpoint.replace('https:', 'http:') }),
      /introspection\.endpoint/,
    ],
    [
      'an endpoint with a query',
      () => options({ ...pkjwt(), endpoint: `${idp.endpoint}?client_secret=x` }),
      /no query, fragment or credentials/,
    ],
    ['an unknown key', () => options({ ...pkjwt(), cacheForever: true }), /cacheForever/],
    [
      'a cache longer than an hour',
      () => options({ ...pkjwt(), maxCacheSeconds: 86_400 }),
      /maxCacheSeconds/,
    ],
    [
      'a missing private key file',
      () =>
        options({
          clientId: 'rs-pkjwt',
          clientAuth: { method: 'private_key_jwt', key: { file: join(root, 'nope.pem') } },
        }),
      /nope\.pem/,
    ],
    [
      'an unset secret variable',
      () =>
        options({
          clientId: 'rs-secret',
          clientAuth: {
            method: 'client_secret_basic',
            secret: { env: 'SHIELD_TEST_UNSET_VAR' },
            allowClientSecret: true,
          },
        }),
      /SHIELD_TEST_UNSET_VAR is empty or not set/,
    ],
  ])('refuses %s', async (_name, build, message) => {
    await expect(start(build())).rejects.toThrow(message);
  });

  it('refuses opaqueTokenIssuer naming an issuer without introspection', async () => {
    const identity = {
      oidc: {
        issuers: [{ issuer: idp.idp.issuer, resource: RESOURCES.opaque, ca: { pem: idp.idp.caPem } }],
        opaqueTokenIssuer: idp.idp.issuer,
      },
    } as IdentityModuleOptions;
    await expect(start(identity)).rejects.toThrow(
      /opaqueTokenIssuer" must name a configured issuer that has "introspection"/,
    );
  });

  it('refuses a resource that is not https', async () => {
    const identity = {
      oidc: {
        issuers: [
          { issuer: idp.idp.issuer, resource: 'http://opaque.shield.test', ca: { pem: idp.idp.caPem } },
        ],
      },
    } as IdentityModuleOptions;
    await expect(start(identity)).rejects.toThrow(/issuers\[0\]\.resource/);
  });
});
