/**
 * Starting dev IdPs for the identity end-to-end tests: each with its own temp keys file (a
 * private JWKS the forge can read), all on the shared test CA.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  loadDevIdpClientsFile,
  requestAccessToken,
  startDevIdp,
  type DevIdp,
} from '../../../apps/dev-idp/src/index.js';
import type { SharedPki } from './idp-pki.js';

/** The committed dev clients (demo-service, reader, demo-service-bound, demo-workload-mtls). */
export const CLIENTS_FILE = fileURLToPath(new URL('../../../apps/dev-idp/clients.json', import.meta.url));

/** A running dev IdP and the keys file it signs with. */
export interface RunningIdp {
  readonly idp: DevIdp;
  readonly keysFile: string;
}

/**
 * Starts a dev IdP on port 0 with the shared PKI and a keys file under `root/<name>/`.
 * `issuer` makes it claim another issuer's identifier (an attacker's IdP in the mix-up tests).
 */
export async function startIdp(
  root: string,
  name: string,
  shared: SharedPki,
  opts: { audience: string; issuer?: string },
): Promise<RunningIdp> {
  const keysFile = join(root, name, 'jwks.json');
  const idp = await startDevIdp({
    port: 0,
    pkiDir: shared.idpPkiDir,
    keysFile,
    clientsFile: CLIENTS_FILE,
    audience: opts.audience,
    ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
  });
  return { idp, keysFile };
}

/**
 * A `client_credentials` token from the token endpoint at `https://localhost:<port>/token`, for an
 * IdP started with another issuer's identifier (its own `getToken` would call that issuer).
 */
export async function tokenFromPort(
  port: number,
  caPem: string,
  opts: { clientId: string; scope: string },
): Promise<string> {
  const client = loadDevIdpClientsFile(CLIENTS_FILE).clients.find((c) => c.clientId === opts.clientId);
  if (!client) throw new Error(`no dev client ${opts.clientId}`);
  return requestAccessToken({
    tokenEndpoint: `https://localhost:${port}/token`,
    ca: caPem,
    clientId: client.clientId,
    authMethod: client.auth,
    scope: opts.scope,
    ...(client.clientSecret !== undefined ? { clientSecret: client.clientSecret } : {}),
  });
}
