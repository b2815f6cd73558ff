/**
 * `shield-token --scope "models:infer llm:chat"` (`npm run -s token -- ...` here): print an access token from the running
 * dev IdP, and nothing else, on stdout, so `TOKEN=$(npm run -s token -- --scope models:infer)`
 * works. Every message goes to stderr; a failure exits non-zero with nothing on stdout.
 *
 * This module must not import oidc-provider (it prints notices on stdout when loaded).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDevIdpClientsFile } from './clients-config.js';
import { loadOrCreateDpopKey, signDpopProof } from './dpop-key.js';
import { DEFAULT_DEV_IDP_PORT, defaultClientsFile } from './dev-idp.options.js';
import {
  DevIdpTokenError,
  DevIdpUnreachableError,
  createDevIdpAgent,
  discoverTokenEndpoint,
  requestAccessToken,
} from './token-client.js';

/** Where a command writes; `process.stdout`/`process.stderr` in the CLI, buffers in tests. */
export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
}

const USAGE = `usage: shield-token --scope "models:infer llm:chat" [options]
       (in this repository: npm run -s token -- --scope ...)

  --scope <scopes>       space-separated scopes (required)
  --client <id>          client from the clients file (default demo-service)
  --resource <uri>       RFC 8707 resource / audience (default: the IdP's default resource)
  --issuer <url>         dev IdP issuer (default $SHIELD_IDP_ISSUER, else
                         https://localhost:$SHIELD_IDP_PORT, else https://localhost:9443)
  --pki-dir <dir>        dev PKI folder holding ca.pem (default $SHIELD_PKI_DIR or .shield/pki)
  --clients-file <file>  clients file (default $SHIELD_IDP_CLIENTS_FILE or the package's clients.json)
  --cert <file>          client certificate (PEM) for mTLS clients / bound tokens
  --key <file>           its private key (PEM)
  --dpop-key <file>      RFC 9449: a DPoP-bound token, bound to the ES256 private JWK in <file>
                         (created, mode 0600, when missing)

DPoP proof of a request made with such a token (printed on stdout):
  shield-token --dpop-key <file> --proof-for "POST https://localhost:8443/v1/..." --token "$TOKEN"
  [--nonce <value of the server's DPoP-Nonce>]
`;

/** Run the token command; resolves to the process exit code. */
export async function runTokenCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        scope: { type: 'string' },
        client: { type: 'string', default: 'demo-service' },
        resource: { type: 'string' },
        issuer: { type: 'string' },
        'pki-dir': { type: 'string' },
        'clients-file': { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        'dpop-key': { type: 'string' },
        'proof-for': { type: 'string' },
        token: { type: 'string' },
        nonce: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    io.stderr(`token: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stderr(USAGE);
    return 0;
  }
  if (values['proof-for'] !== undefined) return printDpopProof(values, io);
  if (values.token !== undefined || values.nonce !== undefined) {
    io.stderr('token: --token and --nonce go with --proof-for\n');
    return 2;
  }
  if (!values.scope?.trim()) {
    io.stderr(`token: --scope is required\n${USAGE}`);
    return 2;
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    io.stderr('token: --cert and --key go together\n');
    return 2;
  }

  const env = (name: string): string | undefined => {
    const value = io.env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  // The same variable moves the IdP (npm start, shield-idp) and this command, so the banner's
  // TOKEN=$(npm run -s token ...) works on moved ports.
  let issuer = values.issuer ?? env('SHIELD_IDP_ISSUER');
  if (issuer === undefined) {
    const port = env('SHIELD_IDP_PORT') ?? String(DEFAULT_DEV_IDP_PORT);
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65_535) {
      io.stderr(
        `token: SHIELD_IDP_PORT must be a port number from 1 to 65535, got ${JSON.stringify(port)}\n`,
      );
      return 2;
    }
    issuer = `https://localhost:${port}`;
  }
  issuer = issuer.replace(/\/$/, '');
  const issuerUrl = URL.parse(issuer);
  if (issuerUrl?.protocol !== 'https:') {
    io.stderr(`token: --issuer must be an https: URL, got ${JSON.stringify(issuer)}\n`);
    return 2;
  }

  try {
    const clients = loadDevIdpClientsFile(
      resolve(values['clients-file'] ?? env('SHIELD_IDP_CLIENTS_FILE') ?? defaultClientsFile()),
    );
    const client = clients.clients.find((c) => c.clientId === values.client);
    if (!client) {
      io.stderr(
        `token: no client ${JSON.stringify(values.client)} in the clients file; known: ${clients.clients.map((c) => c.clientId).join(', ')}\n`,
      );
      return 2;
    }
    const caFile = join(values['pki-dir'] ?? env('SHIELD_PKI_DIR') ?? '.shield/pki', 'ca.pem');
    let ca: Buffer;
    try {
      ca = readFileSync(caFile);
    } catch {
      io.stderr(
        `token: cannot read the dev CA ${caFile}; run shield-pki init (or start the IdP once) first\n`,
      );
      return 1;
    }
    const clientCertificate =
      values.cert !== undefined && values.key !== undefined
        ? { cert: readFileSync(values.cert), key: readFileSync(values.key) }
        : undefined;

    const dpop = values['dpop-key'] === undefined ? undefined : await loadOrCreateDpopKey(values['dpop-key']);
    if (dpop?.created) io.stderr(`token: created the DPoP key ${values['dpop-key']} (keep it private)\n`);
    const agent = createDevIdpAgent(ca, clientCertificate);
    try {
      const tokenEndpoint = await discoverTokenEndpoint(issuer, agent);
      const dpopProof = dpop ? await signDpopProof(dpop.key, 'POST', tokenEndpoint) : undefined;
      const token = await requestAccessToken(
        {
          tokenEndpoint,
          ca,
          clientId: client.clientId,
          authMethod: client.auth,
          scope: values.scope.trim(),
          ...(client.clientSecret !== undefined ? { clientSecret: client.clientSecret } : {}),
          ...(values.resource !== undefined ? { resource: values.resource } : {}),
          ...(clientCertificate ? { clientCertificate } : {}),
          ...(dpopProof !== undefined ? { dpopProof } : {}),
        },
        agent,
      );
      io.stdout(`${token}\n`);
      return 0;
    } finally {
      await agent.close();
    }
  } catch (err) {
    if (
      err instanceof DevIdpUnreachableError ||
      err instanceof DevIdpTokenError ||
      err instanceof TypeError
    ) {
      io.stderr(`token: ${err.message}\n`);
      return 1;
    }
    io.stderr(`token: unexpected error: ${(err as Error).message}\n`);
    return 1;
  }
}

/** `--proof-for "METHOD URL"`: a DPoP proof for one request with `--token`, signed with `--dpop-key`. */
async function printDpopProof(
  values: { 'dpop-key'?: string; 'proof-for'?: string; token?: string; nonce?: string },
  io: CommandIo,
): Promise<number> {
  const match = /^([A-Z]+) +(https:\/\/\S+)$/.exec(values['proof-for']?.trim() ?? '');
  const method = match?.[1];
  const url = match?.[2];
  if (method === undefined || url === undefined || URL.parse(url) === null) {
    io.stderr(
      `token: --proof-for must be "METHOD https://host/path", e.g. "POST https://localhost:8443/v1/models"\n`,
    );
    return 2;
  }
  if (values['dpop-key'] === undefined || values.token === undefined) {
    io.stderr('token: --proof-for needs --dpop-key (the key the token is bound to) and --token\n');
    return 2;
  }
  if (!existsSync(values['dpop-key'])) {
    io.stderr(`token: no DPoP key ${values['dpop-key']}: get a token with --dpop-key first\n`);
    return 1;
  }
  try {
    const { key } = await loadOrCreateDpopKey(values['dpop-key']);
    const proof = await signDpopProof(key, method, url, {
      accessToken: values.token,
      ...(values.nonce !== undefined ? { nonce: values.nonce } : {}),
    });
    io.stdout(`${proof}\n`);
    return 0;
  } catch (err) {
    io.stderr(`token: ${(err as Error).message}\n`);
    return 1;
  }
}
