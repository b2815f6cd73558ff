/**
 * Keyless upstream calls with OAuth 2.0 client credentials (RFC 6749 §4.4) against the real dev
 * IdP (oidc-provider): the client authenticates with `private_key_jwt` (RFC 7523) or with the
 * upstream's own client certificate (RFC 8705 `tls_client_auth`); a client secret only when named.
 * The model server receives the IdP's JWT access token; no API key exists anywhere.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { createUpstreamClient, isShieldError, type UpstreamClient } from '@inference-shield/upstream/client';
import type { UpstreamOptions } from '@inference-shield/upstream';
import {
  MODEL_RESOURCE,
  DEV_CLIENT_SECRET,
  startCredentialsIdp,
  startModelServer,
  type CredentialsIdp,
  type ModelServer,
} from './credentials-fixtures.js';
import { recordingTlsServer } from './upstream-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'shield-cc-'));
let pki: TestPki;
let idp: CredentialsIdp;
let model: ModelServer;
let jwks: ReturnType<typeof createLocalJWKSet>;
const clients: UpstreamClient[] = [];

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  idp = await startCredentialsIdp(pki, root);
  model = await startModelServer(pki);
  const res = await fetchJwks(idp.idp.jwksUri, pki.ca.certPem);
  jwks = createLocalJWKSet(res);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await model?.close();
  await idp?.idp.close();
  rmSync(root, { recursive: true, force: true });
});

async function fetchJwks(uri: string, ca: string): Promise<JSONWebKeySet> {
  const { Agent, fetch } = await import('undici');
  const agent = new Agent({ connect: { ca } });
  try {
    return (await (await fetch(uri, { dispatcher: agent })).json()) as JSONWebKeySet;
  } finally {
    await agent.close();
  }
}

async function client(
  name: string,
  credential: UpstreamOptions['credential'],
  extra: Partial<UpstreamOptions> = {},
) {
  const c = await createUpstreamClient(name, {
    baseUrl: `${model.url}/v1`,
    ca: { file: pki.ca.cert },
    clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
    credential,
    ...extra,
  } as UpstreamOptions);
  clients.push(c);
  return c;
}

const tokenEndpoint = (): string => idp.idp.tokenEndpoint;

function bearerOf(header: string | undefined): string {
  expect(header).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
  return (header ?? '').slice('Bearer '.length);
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isShieldError(err) ? { code: err.code, status: err.status } : err).toEqual({ code, status: 503 });
}

describe('client credentials with private_key_jwt', () => {
  it('sends the IdP access token (iss, aud, client_id, scope), fetched once for concurrent calls', async () => {
    const llm = await client('pkjwt', {
      clientCredentials: {
        tokenEndpoint: tokenEndpoint(),
        issuer: idp.idp.issuer,
        scope: 'llm:chat',
        resource: MODEL_RESOURCE,
        clientAuth: {
          method: 'private_key_jwt',
          clientId: 'llm-pkjwt',
          privateKeyFile: idp.assertionKeyFile,
        },
      },
    });
    const before = model.authorizations.length;
    const answers = await Promise.all(Array.from({ length: 12 }, () => llm.fetch(`${llm.baseUrl}models`)));
    expect(answers.map((r) => r.status)).toEqual(Array(12).fill(200));
    const seen = model.authorizations.slice(before);
    expect(new Set(seen).size).toBe(1);
    expect(llm.credentialStats()).toMatchObject({ tokenRequests: 1, tokensObtained: 1, tokenFailures: 0 });
    const { payload, protectedHeader } = await jwtVerify(bearerOf(seen[0]), jwks, {
      issuer: idp.idp.issuer,
      audience: MODEL_RESOURCE,
    });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ client_id: 'llm-pkjwt', scope: 'llm:chat' });

    // Cached: a later call reuses it, no new token request.
    await llm.request({ path: 'models' });
    expect(model.authorizations.at(-1)).toBe(seen[0]);
    expect(llm.credentialStats()?.tokenRequests).toBe(1);
  });

  it('an assertion signed with an unregistered key is refused: 503 ERR_UPSTREAM_CREDENTIAL_REFUSED, nothing sent upstream', async () => {
    const llm = await client('stranger', {
      clientCredentials: {
        tokenEndpoint: tokenEndpoint(),
        scope: 'llm:chat',
        clientAuth: { method: 'private_key_jwt', clientId: 'llm-pkjwt', privateKeyFile: idp.strangerKeyFile },
      },
    });
    const before = model.authorizations.length;
    await expectCode(llm.fetch(`${llm.baseUrl}models`), 'ERR_UPSTREAM_CREDENTIAL_REFUSED');
    await expectCode(llm.request({ path: 'models' }), 'ERR_UPSTREAM_CREDENTIAL_REFUSED');
    expect(model.authorizations.length).toBe(before);
    expect(llm.stats().errors).toMatchObject({ ERR_UPSTREAM_CREDENTIAL_REFUSED: 2 });
  });
});

describe('refresh ahead of expiry, against the IdP', () => {
  it('replaces a 10 s token before it expires: no expired token is ever sent, no call fails', async () => {
    const short = await startCredentialsIdp(pki, root, 'idp-short', 10);
    try {
      const llm = await client('short', {
        clientCredentials: {
          tokenEndpoint: short.idp.tokenEndpoint,
          scope: 'llm:chat',
          clientAuth: {
            method: 'private_key_jwt',
            clientId: 'llm-pkjwt',
            privateKeyFile: short.assertionKeyFile,
          },
        },
      });
      const first = model.authorizations.length;
      const seen = () => new Set(model.authorizations.slice(first));
      const deadline = Date.now() + 30_000;
      while (seen().size < 2) {
        if (Date.now() > deadline) throw new Error('the token was never refreshed');
        expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200);
        await new Promise((r) => setTimeout(r, 250));
      }
      // Every token, when the model server received it, was still valid.
      const shortJwks = createLocalJWKSet(await fetchJwks(short.idp.jwksUri, pki.ca.certPem));
      for (let i = first; i < model.authorizations.length; i++) {
        const { payload } = await jwtVerify(bearerOf(model.authorizations[i]), shortJwks, {
          issuer: short.idp.issuer,
          currentDate: new Date(model.receivedAt[i] ?? 0),
        });
        expect(payload.exp).toBeGreaterThan((model.receivedAt[i] ?? 0) / 1000);
      }
      expect(llm.credentialStats()).toMatchObject({ tokensObtained: 2, tokenFailures: 0 });
    } finally {
      await short.idp.close();
    }
    // The loop's own 30 s deadline says what went wrong; the test's timeout must not fire first.
  }, 45_000);
});

describe('client credentials with tls_client_auth (RFC 8705)', () => {
  it('authenticates with the upstream client certificate; the token is bound to it (cnf.x5t#S256)', async () => {
    const llm = await client('mtls', {
      clientCredentials: {
        tokenEndpoint: tokenEndpoint(),
        scope: 'llm:chat',
        clientAuth: { method: 'tls_client_auth', clientId: 'llm-mtls' },
      },
    });
    const res = await llm.fetch(`${llm.baseUrl}models`);
    expect(res.status).toBe(200);
    const { payload } = await jwtVerify(bearerOf(model.authorizations.at(-1)), jwks, {
      issuer: idp.idp.issuer,
      audience: MODEL_RESOURCE,
    });
    const thumbprint = createHash('sha256')
      .update(new X509Certificate(pki.client.certPem).raw)
      .digest('base64url');
    expect(payload).toMatchObject({ client_id: 'llm-mtls', cnf: { 'x5t#S256': thumbprint } });
  });

  it('is refused at start-up without the upstream client certificate', async () => {
    await expect(
      createUpstreamClient('nocert', {
        baseUrl: `${model.url}/v1`,
        ca: { file: pki.ca.cert },
        credential: {
          clientCredentials: {
            tokenEndpoint: tokenEndpoint(),
            clientAuth: { method: 'tls_client_auth', clientId: 'llm-mtls' },
          },
        },
      }),
    ).rejects.toThrow(/tls_client_auth needs the upstream's "clientCertificate"/);
  });
});

describe('a client secret is an explicit opt-in, never in a URL', () => {
  it('client_secret_basic works when named, with the secret from a file', async () => {
    const llm = await client('secret', {
      clientCredentials: {
        tokenEndpoint: tokenEndpoint(),
        scope: 'llm:chat',
        clientAuth: {
          method: 'client_secret_basic',
          clientId: 'llm-secret',
          clientSecret: { file: idp.secretFile },
        },
      },
    });
    expect((await llm.fetch(`${llm.baseUrl}models`)).status).toBe(200);
  });

  it.each([
    [
      'no method',
      { clientId: 'llm-secret', clientSecret: { file: 'x' } },
      /"upstreams.s.credential.clientCredentials.clientAuth.method"/,
    ],
    [
      'a secret beside private_key_jwt',
      { method: 'private_key_jwt', clientId: 'c', privateKeyFile: 'k', clientSecret: { env: 'X' } },
      /unknown|clientSecret/,
    ],
    ['a secret in the token endpoint URL', undefined, /credentials in the URL|must not have a query/],
  ])('refuses %s at start-up', async (_name, clientAuth, message) => {
    const tokenUrl =
      clientAuth === undefined
        ? `https://llm-secret:${DEV_CLIENT_SECRET}@localhost:1/token`
        : tokenEndpoint();
    await expect(
      createUpstreamClient('s', {
        baseUrl: `${model.url}/v1`,
        credential: {
          clientCredentials: {
            tokenEndpoint: tokenUrl,
            clientAuth: (clientAuth ?? { method: 'tls_client_auth', clientId: 'c' }) as never,
          },
        },
      }),
    ).rejects.toThrow(message);
  });

  it('refuses a token endpoint with the secret in its query', async () => {
    await expect(
      createUpstreamClient('q', {
        baseUrl: `${model.url}/v1`,
        credential: {
          clientCredentials: {
            tokenEndpoint: `${tokenEndpoint()}?client_secret=${DEV_CLIENT_SECRET}`,
            clientAuth: {
              method: 'client_secret_post',
              clientId: 'llm-secret',
              clientSecret: { file: idp.secretFile },
            },
          },
        },
      }),
    ).rejects.toThrow(/must not have a query/);
  });

  it('the secret travels in the Authorization header, never in the request line', async () => {
    // A recording token endpoint: we only read what the client sent.
    const rec = await recordingTlsServer({ cert: pki.server.certPem, key: pki.server.keyPem }, true);
    try {
      const llm = await client('rec', {
        clientCredentials: {
          tokenEndpoint: `https://localhost:${rec.port}/token`,
          clientAuth: {
            method: 'client_secret_basic',
            clientId: 'llm-secret',
            clientSecret: { file: idp.secretFile },
          },
        },
      });
      await expectCode(llm.fetch(`${llm.baseUrl}models`), 'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
      const sent = rec.text();
      const requestLine = sent.split('\r\n')[0] ?? '';
      expect(requestLine).toBe('POST /token HTTP/1.1');
      // RFC 6749 §2.3.1: id and secret are form-encoded, then joined and base64-encoded.
      const basic = /\r\nauthorization: Basic ([A-Za-z0-9+/=]+)\r\n/.exec(sent)?.[1] ?? '';
      const [id, secret] = Buffer.from(basic, 'base64').toString().split(':').map(decodeURIComponent);
      expect({ id, secret }).toEqual({ id: 'llm-secret', secret: DEV_CLIENT_SECRET });
      const body = sent.slice(sent.indexOf('\r\n\r\n') + 4);
      expect(body).toBe('grant_type=client_credentials');
    } finally {
      await rec.close();
    }
  });
});

describe('token endpoint down', () => {
  it('no token: 503 ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE, nothing sent upstream, then backoff', async () => {
    const other = await startCredentialsIdp(pki, root, 'idp-down');
    const llm = await client('down', {
      clientCredentials: {
        tokenEndpoint: other.idp.tokenEndpoint,
        scope: 'llm:chat',
        clientAuth: { method: 'tls_client_auth', clientId: 'llm-mtls' },
      },
    });
    await other.idp.close();
    const before = model.authorizations.length;
    await expectCode(llm.fetch(`${llm.baseUrl}models`), 'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
    // Within the backoff the failure is returned at once, without another token request.
    await expectCode(llm.fetch(`${llm.baseUrl}models`), 'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE');
    expect(llm.credentialStats()).toMatchObject({ tokenRequests: 1, tokenFailures: 1, tokensObtained: 0 });
    expect(model.authorizations.length).toBe(before);
  });
});
