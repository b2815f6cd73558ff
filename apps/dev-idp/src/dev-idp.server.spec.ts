import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import {
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import {
  DevCertificateAuthority,
  createTestPki,
  initDevPki,
  type DevPkiInitResult,
  type TestPki,
} from '@inference-shield/dev-pki';
import { startDevIdp, type DevIdp } from './dev-idp.server.js';
import { DevIdpTokenError, DevIdpUnreachableError } from './token-client.js';

const root = mkdtempSync(join(tmpdir(), 'dev-idp-'));
const pkiDir = join(root, 'pki');
const keysFile = join(root, 'idp', 'jwks.json');
let pki: DevPkiInitResult;
let testPki: TestPki;
let idp: DevIdp;
let agent: Agent;
const started: DevIdp[] = [];

const start = async (opts: Parameters<typeof startDevIdp>[0] = {}): Promise<DevIdp> => {
  const instance = await startDevIdp({ port: 0, pkiDir, keysFile, ...opts });
  started.push(instance);
  return instance;
};

/** jose's fetch hook, through an undici Agent that trusts the dev CA (and nothing else). */
const viaAgent = (
  url: string,
  init: { headers: Headers; method: 'GET'; redirect: 'manual'; signal: AbortSignal },
) =>
  undiciFetch(url, {
    method: init.method,
    headers: Object.fromEntries(init.headers),
    redirect: init.redirect,
    signal: init.signal,
    dispatcher: agent,
  }) as unknown as Promise<Response>;

/** The IdP's JWKS over HTTPS, trusting only the dev CA. */
async function servedKids(instance: DevIdp): Promise<string[]> {
  const res = await undiciFetch(instance.jwksUri, { dispatcher: agent });
  expect(res.status).toBe(200);
  const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
  for (const key of keys) {
    // The served set is public: no private member may leak.
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(member);
  }
  return keys.map((k) => k.kid as string);
}

/** Verify a token the way a resource server does: remote JWKS over HTTPS with the dev CA. */
async function verify(instance: DevIdp, token: string): Promise<JWTPayload> {
  const jwks = createRemoteJWKSet(new URL(instance.jwksUri), {
    [customFetch]: viaAgent,
  });
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer: instance.issuer,
    audience: instance.audience,
    typ: 'at+jwt',
    algorithms: ['ES256'],
    requiredClaims: ['exp', 'iat', 'sub', 'jti', 'client_id'],
  });
  expect(protectedHeader.kid).toEqual(expect.any(String));
  return payload;
}

const certOf = (path: string) => ({
  cert: readFileSync(path),
  key: readFileSync(path.replace(/\.pem$/, '-key.pem')),
});
const x5tS256 = (certPem: string | Buffer): string =>
  createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');

async function tokenError(promise: Promise<unknown>): Promise<DevIdpTokenError> {
  const err = await promise.then(
    () => expect.unreachable('the IdP issued a token'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DevIdpTokenError);
  return err as DevIdpTokenError;
}

beforeAll(async () => {
  pki = await initDevPki({ dir: pkiDir, clients: ['demo', 'other'] });
  testPki = await createTestPki(join(root, 'test-pki'));
  agent = new Agent({ connect: { ca: readFileSync(pki.caCert) } });
  idp = await start();
});

afterAll(async () => {
  await Promise.all(started.map((s) => s.close()));
  await agent.close();
  rmSync(root, { recursive: true, force: true });
});

describe('dev IdP: client_credentials JWT access tokens', () => {
  it('issues an RFC 9068 token (typ at+jwt, ES256) for the audience, verifiable with the served JWKS', async () => {
    const token = await idp.getToken({ scope: 'models:infer llm:chat' });
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: idp.signingKid });
    const claims = await verify(idp, token);
    expect(claims).toMatchObject({
      iss: idp.issuer,
      aud: 'https://localhost:8443',
      sub: 'demo-service',
      client_id: 'demo-service',
      scope: 'models:infer llm:chat',
    });
    expect(claims.exp! - claims.iat!).toBe(300);
    expect(claims).not.toHaveProperty('cnf');
    expect(idp.issuer).toBe(`https://localhost:${idp.port}`);
  });

  it('grants only the scopes asked for', async () => {
    const claims = await verify(idp, await idp.getToken({ scope: 'llm:chat' }));
    expect(claims.scope).toBe('llm:chat');
  });

  it('accepts the audience as an explicit RFC 8707 resource', async () => {
    const claims = await verify(
      idp,
      await idp.getToken({ scope: 'models:infer', resource: 'https://localhost:8443' }),
    );
    expect(claims.aud).toBe('https://localhost:8443');
  });

  it('serves a discovery document naming its endpoints and RFC 8705 support', async () => {
    const res = await undiciFetch(`${idp.issuer}/.well-known/openid-configuration`, { dispatcher: agent });
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc).toMatchObject({
      issuer: idp.issuer,
      jwks_uri: idp.jwksUri,
      token_endpoint: idp.tokenEndpoint,
      tls_client_certificate_bound_access_tokens: true,
    });
    expect(doc.grant_types_supported).toContain('client_credentials');
    expect(doc.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'tls_client_auth', 'self_signed_tls_client_auth']),
    );
  });

  it.each([
    ['a scope the client is not registered for', { scope: 'models:read' }, 'invalid_scope'],
    ['a scope mixed with an unregistered one', { scope: 'models:infer models:read' }, 'invalid_scope'],
    ['a scope no resource knows', { scope: 'admin' }, 'invalid_scope'],
    ['no scope', { scope: '' }, 'invalid_scope'],
    ['an unknown resource', { scope: 'models:infer', resource: 'https://evil.example' }, 'invalid_target'],
    [
      'a wrong client secret',
      { scope: 'models:infer', clientSecret: 'wrong-secret-wrong-secret-wrong-secret' },
      'invalid_client',
    ],
  ])('refuses %s', async (_name, request, error) => {
    const err = await tokenError(idp.getToken(request));
    expect(err.error).toBe(error);
    expect(err.message).not.toContain('secret-wrong');
  });

  it('keeps the reader client to its one scope', async () => {
    expect((await verify(idp, await idp.getToken({ clientId: 'reader', scope: 'models:read' }))).scope).toBe(
      'models:read',
    );
    expect((await tokenError(idp.getToken({ clientId: 'reader', scope: 'models:infer' }))).error).toBe(
      'invalid_scope',
    );
  });

  it('never writes a token or a client secret to stdout, stderr or the console', async () => {
    const seen: string[] = [];
    const capture = (...args: unknown[]) => {
      seen.push(args.map(String).join(' '));
      return true;
    };
    const spies = [
      vi.spyOn(process.stdout, 'write').mockImplementation(capture),
      vi.spyOn(process.stderr, 'write').mockImplementation(capture),
      ...(['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
        vi.spyOn(console, m).mockImplementation(capture),
      ),
    ];
    let token: string;
    try {
      token = await idp.getToken({ scope: 'models:infer' });
      await tokenError(idp.getToken({ scope: 'models:read' }));
      await tokenError(
        idp.getToken({ scope: 'models:infer', clientSecret: 'a-wrong-secret-that-must-not-be-logged' }),
      );
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const all = seen.join('\n');
    expect(all).not.toContain(token.split('.')[2]);
    expect(all).not.toContain('dev-only-demo-service-secret');
    expect(all).not.toContain('a-wrong-secret-that-must-not-be-logged');
  });
});

describe('dev IdP: certificate-bound tokens (RFC 8705)', () => {
  it('authenticates a tls_client_auth client by its SPIFFE ID and binds the token to its certificate', async () => {
    const demo = certOf(pki.clientCert('demo'));
    const token = await idp.getToken({
      clientId: 'demo-workload-mtls',
      scope: 'models:infer',
      clientCertificate: demo,
    });
    const claims = await verify(idp, token);
    expect(claims.sub).toBe('demo-workload-mtls');
    expect(claims.cnf).toEqual({ 'x5t#S256': x5tS256(demo.cert) });
  });

  it('binds the token of a secret client that presents a certificate', async () => {
    const demo = certOf(pki.clientCert('other'));
    const claims = await verify(
      idp,
      await idp.getToken({ clientId: 'demo-service-bound', scope: 'models:infer', clientCertificate: demo }),
    );
    expect(claims.cnf).toEqual({ 'x5t#S256': x5tS256(demo.cert) });
  });

  it('refuses a bound-token client that presents no certificate', async () => {
    expect(
      (await tokenError(idp.getToken({ clientId: 'demo-service-bound', scope: 'models:infer' }))).error,
    ).toBe('invalid_grant');
  });

  it('does not bind tokens of clients not registered for it, even with a certificate', async () => {
    const claims = await verify(
      idp,
      await idp.getToken({ scope: 'models:infer', clientCertificate: certOf(pki.clientCert('demo')) }),
    );
    expect(claims).not.toHaveProperty('cnf');
  });

  it.each<[string, () => Promise<{ cert: string | Buffer; key: string | Buffer }>]>([
    ['another SPIFFE ID', async () => certOf(pki.clientCert('other'))],
    [
      'another CA with the same SPIFFE ID',
      async () => {
        const ca = testPki.otherCa.ca.authority;
        const c = await ca.issueClient({ spiffeId: 'spiffe://shield.local/demo' });
        return { cert: c.certPem, key: c.keyPem };
      },
    ],
    [
      'an expired certificate of the right CA',
      async () => {
        const ca = await DevCertificateAuthority.load(
          readFileSync(pki.caCert, 'utf8'),
          readFileSync(pki.caKey, 'utf8'),
        );
        const day = 24 * 3600 * 1000;
        const c = await ca.issueClient({
          spiffeId: 'spiffe://shield.local/demo',
          notBefore: new Date(Date.now() - 30 * day),
          notAfter: new Date(Date.now() - day),
        });
        return { cert: c.certPem, key: c.keyPem };
      },
    ],
    [
      'two SPIFFE IDs, one of them right',
      async () => {
        const ca = await DevCertificateAuthority.load(
          readFileSync(pki.caCert, 'utf8'),
          readFileSync(pki.caKey, 'utf8'),
        );
        const c = await ca.issueClient({
          spiffeId: 'spiffe://shield.local/demo',
          uris: ['spiffe://shield.local/admin'],
        });
        return { cert: c.certPem, key: c.keyPem };
      },
    ],
  ])('refuses a tls_client_auth client presenting %s', async (_name, make) => {
    const clientCertificate = await make();
    const err = await tokenError(
      idp.getToken({ clientId: 'demo-workload-mtls', scope: 'models:infer', clientCertificate }),
    );
    expect(err.error).toBe('invalid_client');
  });
});

describe('dev IdP: revoked client certificates', () => {
  it('refuses a tls_client_auth client whose certificate the CA revoked (ca.crl.pem)', async () => {
    const dir = mkdtempSync(join(root, 'crl-'));
    for (const name of ['ca.pem', 'localhost.pem', 'localhost-key.pem'])
      copyFileSync(join(pkiDir, name), join(dir, name));
    const ca = await DevCertificateAuthority.load(
      readFileSync(pki.caCert, 'utf8'),
      readFileSync(pki.caKey, 'utf8'),
    );
    const [good, revoked] = await Promise.all([
      ca.issueClient({ spiffeId: 'spiffe://shield.local/demo' }),
      ca.issueClient({ spiffeId: 'spiffe://shield.local/demo' }),
    ]);
    ca.revoke(revoked.serialNumber);
    writeFileSync(join(dir, 'ca.crl.pem'), await ca.crlPem());
    const own = await start({ pkiDir: dir, keysFile: join(dir, 'jwks.json') });

    const ok = { clientId: 'demo-workload-mtls', scope: 'models:infer' };
    await expect(
      own.getToken({ ...ok, clientCertificate: { cert: good.certPem, key: good.keyPem } }),
    ).resolves.toEqual(expect.any(String));
    const err = await tokenError(
      own.getToken({ ...ok, clientCertificate: { cert: revoked.certPem, key: revoked.keyPem } }),
    );
    expect(err.error).toBe('invalid_client');
  });
});

describe('dev IdP: self_signed_tls_client_auth (RFC 8705 2.2)', () => {
  let own: DevIdp;
  beforeAll(async () => {
    const dir = mkdtempSync(join(root, 'self-signed-'));
    const file = join(dir, 'clients.json');
    writeFileSync(
      file,
      JSON.stringify({
        defaultResource: 'https://localhost:8443',
        resources: [{ identifier: 'https://localhost:8443', scopes: ['models:infer'] }],
        clients: [
          {
            clientId: 'self-signed',
            auth: 'self_signed_tls_client_auth',
            // Relative to the clients file: a certificate the IdP's CA never issued.
            selfSignedCertificateFile: '../test-pki/other-ca-client.pem',
            scopes: ['models:infer'],
            certificateBoundAccessTokens: true,
          },
        ],
      }),
    );
    own = await start({ clientsFile: file, keysFile: join(dir, 'jwks.json') });
  });

  it('authenticates the client by its registered certificate and binds the token to it', async () => {
    const registered = certOf(testPki.otherCa.client.cert);
    const claims = await verify(
      own,
      await own.getToken({ clientId: 'self-signed', scope: 'models:infer', clientCertificate: registered }),
    );
    expect(claims).toMatchObject({ sub: 'self-signed', cnf: { 'x5t#S256': x5tS256(registered.cert) } });
  });

  it('refuses another certificate, even one the dev CA issued', async () => {
    const err = await tokenError(
      own.getToken({
        clientId: 'self-signed',
        scope: 'models:infer',
        clientCertificate: certOf(pki.clientCert('demo')),
      }),
    );
    expect(err.error).toBe('invalid_client');
  });
});

describe('dev IdP: persistent, rotating signing keys', () => {
  it('keeps its kid across a restart, and old tokens verify against the new instance', async () => {
    const token = await idp.getToken({ scope: 'models:infer' });
    const before = await servedKids(idp);
    const again = await start();
    expect(await servedKids(again)).toEqual(before);
    expect(again.signingKid).toBe(idp.signingKid);
    const claims = await jwtVerify(
      token,
      createRemoteJWKSet(new URL(again.jwksUri), {
        [customFetch]: viaAgent,
      }),
    );
    expect(claims.payload.sub).toBe('demo-service');
    await again.close();
  });

  it('rotation serves the new key first, keeps the old one, and old tokens keep verifying', async () => {
    const dir = mkdtempSync(join(root, 'rotate-'));
    const own = await start({ keysFile: join(dir, 'jwks.json') });
    const oldKid = own.signingKid;
    const oldToken = await own.getToken({ scope: 'models:infer' });

    await own.rotateKeys();
    const kids = await servedKids(own);
    expect(kids).toHaveLength(2);
    expect(kids[1]).toBe(oldKid);
    expect(kids[0]).toBe(own.signingKid);
    expect(own.signingKid).not.toBe(oldKid);

    const newToken = await own.getToken({ scope: 'models:infer' });
    expect(decodeProtectedHeader(newToken).kid).toBe(kids[0]);
    await expect(verify(own, oldToken)).resolves.toMatchObject({ sub: 'demo-service' });
    await expect(verify(own, newToken)).resolves.toMatchObject({ sub: 'demo-service' });

    // After three more rotations the first key has left the set: its tokens no longer verify.
    for (let i = 0; i < 3; i++) await own.rotateKeys();
    expect(await servedKids(own)).toHaveLength(3);
    expect(await servedKids(own)).not.toContain(oldKid);
    await expect(verify(own, oldToken)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  it('reloadKeys picks up a rotation made by another process on the keys file', async () => {
    const dir = mkdtempSync(join(root, 'reload-'));
    const file = join(dir, 'jwks.json');
    const own = await start({ keysFile: file });
    const { rotateDevIdpKeys } = await import('./signing-keys.js');
    const rotated = await rotateDevIdpKeys(file);
    await own.reloadKeys();
    expect(own.signingKid).toBe(rotated.keys[0]?.kid);
    expect(await servedKids(own)).toEqual(rotated.keys.map((k) => k.kid));
  });
});

describe('dev IdP: lifecycle and start-up checks', () => {
  it('is unreachable after close: getToken fails with DevIdpUnreachableError, no hang', async () => {
    const own = await start();
    const token = await own.getToken({ scope: 'models:infer' });
    expect(decodeJwt(token).iss).toBe(own.issuer);
    await own.close();
    await own.close(); // idempotent
    await expect(own.getToken({ scope: 'models:infer' })).rejects.toBeInstanceOf(DevIdpUnreachableError);
    // Nothing listens any more: a fresh connection is refused.
    const fresh = new Agent({ connect: { ca: own.caPem } });
    try {
      await expect(undiciFetch(own.jwksUri, { dispatcher: fresh })).rejects.toMatchObject({
        cause: { code: 'ECONNREFUSED' },
      });
    } finally {
      await fresh.close();
    }
  });

  it('issues tokens for another audience when told (a model server on a random port)', async () => {
    const own = await start({ audience: 'https://localhost:12345' });
    const claims = decodeJwt(await own.getToken({ scope: 'models:infer' }));
    expect(claims.aud).toBe('https://localhost:12345');
    expect(own.audience).toBe('https://localhost:12345');
  });

  it('creates the dev PKI when the folder is empty', async () => {
    const dir = mkdtempSync(join(root, 'fresh-'));
    const own = await start({ pkiDir: join(dir, 'pki'), keysFile: join(dir, 'jwks.json') });
    expect(own.caPem).toBe(readFileSync(join(dir, 'pki', 'ca.pem'), 'utf8'));
    const ownAgent = new Agent({ connect: { ca: own.caPem } });
    try {
      expect((await undiciFetch(own.jwksUri, { dispatcher: ownAgent })).status).toBe(200);
    } finally {
      await ownAgent.close();
    }
  });

  it.each([
    [
      'TLS 1.1',
      // SECLEVEL=0 lets our client offer TLS 1.1 at all (OpenSSL 3 refuses it on its own otherwise),
      // so only the server's refusal can make this test pass.
      { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' },
    ],
    [
      'a TLS 1.2 CBC suite',
      { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA' },
    ],
  ] as const)('refuses a handshake with %s', async (_name, opts) => {
    const outcome = await new Promise<string>((resolveOutcome) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: idp.port,
        servername: 'localhost',
        ca: idp.caPem,
        ...opts,
      });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolveOutcome('connected');
      });
      socket.once('error', () => resolveOutcome('refused'));
    });
    expect(outcome).toBe('refused');
  });

  it('refuses a client that does not trust the dev CA (verification is never off)', async () => {
    const stranger = new Agent({ connect: { ca: testPki.ca.certPem } });
    try {
      await expect(undiciFetch(idp.jwksUri, { dispatcher: stranger })).rejects.toThrow();
    } finally {
      await stranger.close();
    }
  });

  it.each([
    ['an expired server certificate', () => testPki.expired.server, 'ERR_CERT_EXPIRED'],
    ['a key that does not match', () => testPki.mismatchedKey.server, 'ERR_CERT_KEY_MISMATCH'],
    ['a server certificate without serverAuth', () => testPki.wrongEku.server, 'ERR_CERT_USAGE'],
  ])('refuses to start with %s, naming the file', async (_name, pair, code) => {
    const dir = mkdtempSync(join(root, 'bad-pki-'));
    copyFileSync(testPki.ca.cert, join(dir, 'ca.pem'));
    copyFileSync(pair().cert, join(dir, 'localhost.pem'));
    copyFileSync(pair().key, join(dir, 'localhost-key.pem'));
    const err = await startDevIdp({ port: 0, pkiDir: dir, keysFile: join(dir, 'jwks.json') }).then(
      (s) => {
        started.push(s);
        return expect.unreachable('the IdP started');
      },
      (e: unknown) => e,
    );
    expect(isShieldError(err) && err.code).toBe(code);
    expect((err as Error).message).toContain(join(dir, 'localhost'));
  });

  it('refuses to start when the server key file is missing', async () => {
    const dir = mkdtempSync(join(root, 'no-key-'));
    copyFileSync(pki.caCert, join(dir, 'ca.pem'));
    copyFileSync(pki.serverCert, join(dir, 'localhost.pem'));
    await expect(
      startDevIdp({ port: 0, pkiDir: dir, keysFile: join(dir, 'jwks.json') }),
    ).rejects.toMatchObject({
      code: 'ERR_CERT_FILE_UNREADABLE',
    });
  });

  it('refuses to start with a corrupt keys file instead of replacing it', async () => {
    const dir = mkdtempSync(join(root, 'bad-keys-'));
    const file = join(dir, 'jwks.json');
    writeFileSync(file, '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', { mode: 0o600 });
    await expect(start({ keysFile: file })).rejects.toThrow(/not a private ES256 JWKS/);
    expect(readFileSync(file, 'utf8')).toContain('oct');
  });

  it('refuses to start with a broken clients file', async () => {
    const dir = mkdtempSync(join(root, 'bad-clients-'));
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'clients.json');
    writeFileSync(file, JSON.stringify({ defaultResource: 'https://x', resources: [], clients: [] }));
    await expect(start({ clientsFile: file })).rejects.toThrow(
      /"[^"]*clients\.json\.resources" must be a non-empty array/,
    );
  });

  it.each([
    ['an unknown option', { prot: 0 }, /unknown option "prot"/],
    ['an http: issuer', { issuer: 'http://localhost:9443' }, /"devIdp\.issuer" must be an https: URL/],
    ['an issuer with a path', { issuer: 'https://localhost:9443/realms/x' }, /must be an origin/],
    ['a port out of range', { port: 70_000 }, /"devIdp\.port" must be an integer/],
    ['an http: audience', { audience: 'http://localhost:8443' }, /"devIdp\.audience" must be an https: URL/],
  ])('refuses to start with %s (TypeError naming the field)', async (_name, opts, message) => {
    await expect(startDevIdp({ pkiDir, keysFile, ...(opts as object) })).rejects.toThrow(message);
  });
});

describe('dev IdP: several audiences from one clients file', () => {
  let multi: DevIdp;
  const MODELS = 'https://models.localhost:8443';
  const LLM = 'https://llm.localhost:9444';
  const ADMIN = 'https://admin.localhost:7443';
  beforeAll(async () => {
    const dir = mkdtempSync(join(root, 'multi-'));
    const file = join(dir, 'clients.json');
    writeFileSync(
      file,
      JSON.stringify({
        defaultResource: MODELS,
        resources: [
          { identifier: MODELS, scopes: ['models:infer', 'models:read'] },
          { identifier: LLM, scopes: ['llm:chat'], accessTokenTtlSeconds: 60 },
          { identifier: ADMIN, scopes: ['models:read', 'admin'] },
        ],
        clients: [
          {
            clientId: 'app',
            auth: 'client_secret_basic',
            clientSecret: 'dev-only-app-secret-for-the-multi-audience-test',
            scopes: ['models:infer', 'models:read', 'llm:chat'],
            resources: [MODELS, LLM],
          },
          {
            clientId: 'ops',
            auth: 'client_secret_post',
            clientSecret: 'dev-only-ops-secret-for-the-multi-audience-test',
            scopes: ['models:read', 'admin'],
          },
        ],
      }),
    );
    multi = await start({ clientsFile: file, keysFile: join(dir, 'jwks.json') });
  });

  it.each([
    ['app', 'models:infer', undefined, MODELS, 300],
    ['app', 'llm:chat', LLM, LLM, 60],
    ['ops', 'models:read', ADMIN, ADMIN, 300],
    ['ops', 'admin', ADMIN, ADMIN, 300],
  ])('%s gets %s for %s: aud %s, lifetime %i s', async (clientId, scope, resource, aud, ttl) => {
    const token = await multi.getToken({ clientId, scope, ...(resource ? { resource } : {}) });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ aud, scope, client_id: clientId });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(ttl);
  });

  it.each([
    ['a resource the client is not listed for', 'app', 'models:read', ADMIN, 'invalid_target'],
    ['a scope the resource does not define', 'app', 'llm:chat', MODELS, 'invalid_scope'],
    ['a scope the client does not hold', 'ops', 'models:infer', MODELS, 'invalid_scope'],
  ])('refuses %s', async (_name, clientId, scope, resource, error) => {
    const err = await tokenError(multi.getToken({ clientId, scope, resource }));
    expect(err.error).toBe(error);
  });

  it.each([
    [
      'a client resource no resource has',
      (c: { clients: Record<string, unknown>[] }) => (c.clients[0]!.resources = ['https://nowhere.example']),
      /clients\[0\]\.resources" has "https:\/\/nowhere\.example", which is not a resource's identifier/,
    ],
    [
      'a client scope none of its resources defines',
      (c: { clients: Record<string, unknown>[] }) => (c.clients[0]!.resources = [LLM]),
      /clients\[0\]\.scopes" has a scope none of "[^"]*clients\[0\]\.resources" defines/,
    ],
  ])('refuses a clients file with %s', async (_name, mutate, message) => {
    const { parseDevIdpClientsConfig } = await import('./clients-config.js');
    const config = {
      defaultResource: MODELS,
      resources: [
        { identifier: MODELS, scopes: ['models:infer'] },
        { identifier: LLM, scopes: ['llm:chat'] },
      ],
      clients: [
        {
          clientId: 'app',
          auth: 'client_secret_basic',
          clientSecret: 'dev-only-app-secret-for-the-multi-audience-test',
          scopes: ['models:infer'],
        } as Record<string, unknown>,
      ],
    };
    mutate(config);
    expect(() => parseDevIdpClientsConfig(config, root)).toThrow(message);
  });
});

describe('dev IdP: our TLS policy and plaintext answer on a real socket', () => {
  /** Run openssl s_client against the IdP; resolves with whether a session was established. */
  async function handshake(args: string[]): Promise<{ ok: boolean; out: string }> {
    const { execFile } = await import('node:child_process');
    return new Promise((resolveRun) => {
      const child = execFile(
        'openssl',
        ['s_client', '-connect', `127.0.0.1:${idp.port}`, '-servername', 'localhost', ...args],
        { timeout: 10_000 },
        (err, stdout, stderr) => {
          const out = `${stdout}\n${stderr}`;
          resolveRun({ ok: !err && /Cipher is (?!\(NONE\))/.test(out), out });
        },
      );
      child.stdin?.end('Q\n');
    });
  }

  it.each([
    ['a CBC suite (Lucky13)', ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA']],
    ['a CBC-SHA256 suite', ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256']],
    ['TLS 1.1', ['-tls1_1']],
  ])('refuses %s', async (_name, args) => {
    const { ok } = await handshake(args);
    expect(ok).toBe(false);
  });

  it('accepts TLS 1.2 with an ECDHE AEAD suite, and TLS 1.3', async () => {
    expect((await handshake(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'])).ok).toBe(true);
    expect((await handshake(['-tls1_3'])).ok).toBe(true);
  });

  it("answers plain HTTP with the bootstrap's 400 ERR_HTTP_TO_HTTPS, not an empty reply", async () => {
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolveAnswer, reject) => {
      const socket = connect({ host: '127.0.0.1', port: idp.port });
      let data = '';
      socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
      socket.on('connect', () =>
        socket.write('GET /.well-known/openid-configuration HTTP/1.1\r\nHost: localhost\r\n\r\n'),
      );
      socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
      socket.on('close', () => resolveAnswer(data));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain('Connection: close');
    expect(JSON.parse(answer.split('\r\n\r\n')[1] ?? '')).toMatchObject({ code: 'ERR_HTTP_TO_HTTPS' });
  });
});
