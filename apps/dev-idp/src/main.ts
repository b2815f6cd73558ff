#!/usr/bin/env node
/**
 * `shield-idp` (and `npm run idp` in this repository): the dev IdP on https://localhost:9443.
 * Prints the issuer URL on stdout once it listens; stops on SIGINT/SIGTERM. It re-reads its keys
 * file when `shield-idp-rotate` changes it. Options and their environment variables: {@link USAGE}.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DEV_IDP_PORT } from './dev-idp.options.js';
import { startDevIdp } from './dev-idp.server.js';
import { DEFAULT_KEYS_FILE } from './signing-keys.js';

const USAGE = `usage: shield-idp [options]   (DEVELOPMENT ONLY: never point a real service at it)

  --port <n>             default $SHIELD_IDP_PORT or ${DEFAULT_DEV_IDP_PORT} (0: any free port)
  --clients-file <file>  resources (audiences) and clients; default $SHIELD_IDP_CLIENTS_FILE or the
                         package's clients.json (format: the package README)
  --audience <uri>       renames the clients file's default resource; default $SHIELD_IDP_AUDIENCE
  --pki-dir <dir>        dev PKI (created when missing); default $SHIELD_PKI_DIR or .shield/pki
  --keys-file <file>     signing keys (created when missing); default $SHIELD_IDP_KEYS_FILE or ${DEFAULT_KEYS_FILE}
`;

const env = (name: string): string | undefined => {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
};

let values;
try {
  ({ values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      'clients-file': { type: 'string' },
      audience: { type: 'string' },
      'pki-dir': { type: 'string' },
      'keys-file': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  process.stderr.write(`shield-idp: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const rawPort = values.port ?? env('SHIELD_IDP_PORT');
const port = rawPort === undefined ? DEFAULT_DEV_IDP_PORT : Number(rawPort);
const keysFile = resolve(values['keys-file'] ?? env('SHIELD_IDP_KEYS_FILE') ?? DEFAULT_KEYS_FILE);

try {
  const audience = values.audience ?? env('SHIELD_IDP_AUDIENCE');
  const pkiDir = values['pki-dir'] ?? env('SHIELD_PKI_DIR');
  const clientsFile = values['clients-file'] ?? env('SHIELD_IDP_CLIENTS_FILE');
  const idp = await startDevIdp({
    port,
    keysFile,
    ...(audience ? { audience } : {}),
    ...(pkiDir ? { pkiDir: resolve(pkiDir) } : {}),
    ...(clientsFile ? { clientsFile: resolve(clientsFile) } : {}),
  });
  // fs.watchFile polls stat(), which survives the atomic rename rotate-cli does (fs.watch would
  // keep watching the replaced inode).
  watchFile(keysFile, { interval: 2000, persistent: false }, (curr, prev) => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino) return;
    idp.reloadKeys().then(
      () =>
        process.stderr.write(
          `dev IdP: signing keys reloaded, new tokens signed with kid ${idp.signingKid}\n`,
        ),
      (err: unknown) => process.stderr.write(`dev IdP: keys file not reloaded: ${(err as Error).message}\n`),
    );
  });
  process.stdout.write(`${idp.issuer}\n`);
  process.stderr.write(
    `dev IdP listening: issuer ${idp.issuer}, JWKS ${idp.jwksUri}, default audience ${idp.audience} (DEV ONLY)\n`,
  );
  const stop = (): void => {
    unwatchFile(keysFile);
    void idp.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  process.stderr.write(`dev IdP did not start: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
