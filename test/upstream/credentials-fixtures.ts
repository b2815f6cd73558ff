/**
 * Real servers for the keyless-credential tests: a dev IdP with clients registered for
 * `private_key_jwt`, `tls_client_auth` and (explicit opt-in) `client_secret_basic`, and a model
 * server (mTLS, dev CA) that records the `Authorization` values it receives.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { TEST_CLIENT_SPIFFE_ID, type TestPki } from '@inference-shield/dev-pki';
import { startDevIdp, type DevIdp } from '../../apps/dev-idp/src/index.js';

/** The resource (audience) the internal model server's tokens are for. */
export const MODEL_RESOURCE = 'https://models.internal.test';
/** A dev-only secret, for the explicit opt-in test. */
export const DEV_CLIENT_SECRET = 'dev-only-credentials-test-secret-0123456789';

/** A dev IdP with the test clients, and the files a client needs. */
export interface CredentialsIdp {
  readonly idp: DevIdp;
  /** PKCS#8 PEM of `llm-pkjwt`'s assertion key. */
  readonly assertionKeyFile: string;
  /** A key the IdP does not know (a refused assertion). */
  readonly strangerKeyFile: string;
  /** A file holding {@link DEV_CLIENT_SECRET}. */
  readonly secretFile: string;
}

/** Lay out the dev IdP's folder from the test PKI and start it on port 0. */
export async function startCredentialsIdp(
  pki: TestPki,
  root: string,
  name = 'idp',
  accessTokenTtlSeconds = 300,
): Promise<CredentialsIdp> {
  const dir = join(root, name);
  const pkiDir = join(dir, 'pki');
  mkdirSync(pkiDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(pkiDir, 'ca.pem'), pki.ca.certPem);
  writeFileSync(join(pkiDir, 'ca.crl.pem'), pki.ca.crlPem);
  writeFileSync(join(pkiDir, 'localhost.pem'), pki.server.certPem);
  writeFileSync(join(pkiDir, 'localhost-key.pem'), pki.server.keyPem, { mode: 0o600 });

  const key = (file: string): { privateFile: string; publicFile: string } => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privateFile = join(dir, `${file}-key.pem`);
    const publicFile = join(dir, `${file}-pub.pem`);
    writeFileSync(privateFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(publicFile, pair.publicKey.export({ type: 'spki', format: 'pem' }));
    return { privateFile, publicFile };
  };
  const assertion = key('assertion');
  const stranger = key('stranger');
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, `${DEV_CLIENT_SECRET}\n`, { mode: 0o600 });

  const clientsFile = join(dir, 'clients.json');
  writeFileSync(
    clientsFile,
    JSON.stringify({
      defaultResource: MODEL_RESOURCE,
      resources: [{ identifier: MODEL_RESOURCE, scopes: ['llm:chat', 'llm:embed'], accessTokenTtlSeconds }],
      clients: [
        {
          clientId: 'llm-pkjwt',
          auth: 'private_key_jwt',
          publicKeyFile: assertion.publicFile,
          scopes: ['llm:chat'],
        },
        {
          clientId: 'llm-mtls',
          auth: 'tls_client_auth',
          tlsClientAuthSanUri: TEST_CLIENT_SPIFFE_ID,
          scopes: ['llm:chat'],
          certificateBoundAccessTokens: true,
        },
        {
          clientId: 'llm-secret',
          auth: 'client_secret_basic',
          clientSecret: DEV_CLIENT_SECRET,
          scopes: ['llm:chat'],
        },
      ],
    }),
  );
  const idp = await startDevIdp({ port: 0, pkiDir, keysFile: join(dir, 'jwks.json'), clientsFile });
  return { idp, assertionKeyFile: assertion.privateFile, strangerKeyFile: stranger.privateFile, secretFile };
}

/** An internal model server: mTLS with the dev CA, records each `Authorization`, answers `{}`. */
export interface ModelServer {
  readonly url: string;
  /** Every `Authorization` header received, in order. */
  readonly authorizations: string[];
  /** When each of them was received (epoch ms), same order. */
  readonly receivedAt: number[];
  close(): Promise<void>;
}

export async function startModelServer(pki: TestPki): Promise<ModelServer> {
  const authorizations: string[] = [];
  const receivedAt: number[] = [];
  const server: Server = createServer(
    {
      cert: pki.server.certPem,
      key: pki.server.keyPem,
      ca: pki.ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      authorizations.push(req.headers.authorization ?? '');
      receivedAt.push(Date.now());
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
        res.end('{}');
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}`,
    authorizations,
    receivedAt,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
