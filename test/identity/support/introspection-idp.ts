/**
 * A dev IdP (apps/dev-idp, oidc-provider) set up for RFC 7662 tests: JWT and opaque resources, the
 * resource servers that may introspect (one per client authentication method) and the clients
 * that get tokens. Everything is written to a temp folder; the clients file is the real format.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { startDevIdp, type DevIdp } from '../../../apps/dev-idp/src/index.js';
import type { SharedPki } from './idp-pki.js';

/** The resources of the test IdP (RFC 8707 identifiers, i.e. token audiences). */
export const RESOURCES = {
  /** JWT access tokens (the IdP's default resource). */
  jwt: 'https://models.shield.test',
  /** Opaque tokens for this service. */
  opaque: 'https://opaque.shield.test',
  /** Opaque tokens for this service that live 10 s (the shortest the dev IdP allows). */
  short: 'https://short.shield.test',
  /** Opaque tokens for another resource server. */
  other: 'https://other.shield.test',
} as const;

/** A dev-only secret, for the explicit `client_secret_basic` opt-in test. */
export const RS_SECRET = 'dev-only-introspection-secret-for-tests-0123456789';
/** A dev-only secret of the token-requesting clients. */
const CLIENT_SECRET = 'dev-only-introspection-test-client-secret-abcdef';

/** The running IdP and the resource servers' credentials. */
export interface IntrospectionIdp {
  readonly idp: DevIdp;
  readonly endpoint: string;
  readonly revocationEndpoint: string;
  /** PKCS#8 PEM private key of `rs-pkjwt` (private_key_jwt). */
  readonly rsPrivateKeyFile: string;
  /** Client certificate and key files of `rs-mtls` (tls_client_auth): the PKI's `client`. */
  readonly rsMtls: { readonly cert: string; readonly key: string };
  /** An opaque token for `resource`, from `demo-opaque` (or `demo-opaque-bound` with the demo certificate). */
  opaqueToken(resource: string, opts?: { bound?: boolean; scope?: string }): Promise<string>;
  /** RFC 7009: the client that got the token revokes it. */
  revoke(token: string, opts?: { bound?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/** Starts the IdP under `root/<name>` with the shared PKI. */
export async function startIntrospectionIdp(
  root: string,
  name: string,
  shared: SharedPki,
): Promise<IntrospectionIdp> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsPrivateKeyFile = join(dir, 'rs-pkjwt-key.pem');
  writeFileSync(rsPrivateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(dir, 'rs-pkjwt-pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  const all = Object.values(RESOURCES);
  const clients = {
    defaultResource: RESOURCES.jwt,
    resources: [
      { identifier: RESOURCES.jwt, scopes: ['models:infer'], accessTokenTtlSeconds: 300 },
      {
        identifier: RESOURCES.opaque,
        scopes: ['models:infer', 'models:read'],
        accessTokenTtlSeconds: 300,
        accessTokenFormat: 'opaque',
      },
      {
        identifier: RESOURCES.short,
        scopes: ['models:infer'],
        accessTokenTtlSeconds: 10,
        accessTokenFormat: 'opaque',
      },
      {
        identifier: RESOURCES.other,
        scopes: ['models:infer'],
        accessTokenTtlSeconds: 300,
        accessTokenFormat: 'opaque',
      },
    ],
    clients: [
      {
        clientId: 'demo-opaque',
        auth: 'client_secret_basic',
        clientSecret: CLIENT_SECRET,
        scopes: ['models:infer', 'models:read'],
        resources: all,
      },
      {
        clientId: 'demo-opaque-bound',
        auth: 'client_secret_basic',
        clientSecret: CLIENT_SECRET,
        scopes: ['models:infer'],
        resources: all,
        certificateBoundAccessTokens: true,
      },
      {
        clientId: 'rs-pkjwt',
        auth: 'private_key_jwt',
        publicKeyFile: 'rs-pkjwt-pub.pem',
        scopes: ['models:read'],
        introspect: true,
      },
      {
        clientId: 'rs-mtls',
        auth: 'tls_client_auth',
        tlsClientAuthSanUri: shared.pki.client.spiffeId,
        scopes: ['models:read'],
        introspect: true,
      },
      {
        clientId: 'rs-secret',
        auth: 'client_secret_basic',
        clientSecret: RS_SECRET,
        scopes: ['models:read'],
        introspect: true,
      },
    ],
  };
  const clientsFile = join(dir, 'clients.json');
  writeFileSync(clientsFile, JSON.stringify(clients, null, 2));
  const idp = await startDevIdp({
    port: 0,
    pkiDir: shared.idpPkiDir,
    keysFile: join(dir, 'jwks.json'),
    clientsFile,
  });
  const agent = new Agent({ connect: { ca: idp.caPem } });
  const revocationEndpoint = `${idp.issuer}/token/revocation`;
  const basic = (clientId: string): string =>
    `Basic ${Buffer.from(`${clientId}:${CLIENT_SECRET}`).toString('base64')}`;
  return {
    idp,
    endpoint: `${idp.issuer}/token/introspection`,
    revocationEndpoint,
    rsPrivateKeyFile,
    rsMtls: { cert: shared.pki.client.cert, key: shared.pki.client.key },
    opaqueToken: (resource, opts = {}) =>
      idp.getToken({
        clientId: opts.bound ? 'demo-opaque-bound' : 'demo-opaque',
        scope: opts.scope ?? 'models:infer',
        resource,
        ...(opts.bound ? { clientCertificate: { cert: shared.demo.certPem, key: shared.demo.keyPem } } : {}),
      }),
    revoke: async (token, opts = {}) => {
      const res = await fetch(revocationEndpoint, {
        method: 'POST',
        dispatcher: opts.bound
          ? new Agent({ connect: { ca: idp.caPem, cert: shared.demo.certPem, key: shared.demo.keyPem } })
          : agent,
        headers: {
          authorization: basic(opts.bound ? 'demo-opaque-bound' : 'demo-opaque'),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token }).toString(),
      });
      await res.body?.cancel();
      if (res.status !== 200) throw new Error(`revocation answered ${res.status}`);
    },
    close: async () => {
      await agent.close();
      await idp.close();
    },
  };
}
