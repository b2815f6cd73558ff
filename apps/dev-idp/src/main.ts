/**
 * Entry point of `npm run idp`: the dev IdP on https://localhost:9443 (`SHIELD_IDP_PORT` to change
 * the port, `SHIELD_IDP_AUDIENCE` for the resource, `SHIELD_PKI_DIR` for the certificates). Prints the issuer URL once it listens; stops on SIGINT/SIGTERM. It re-reads its keys
 * file when `npm run idp:rotate` changes it.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_DEV_IDP_PORT } from './dev-idp.options.js';
import { startDevIdp } from './dev-idp.server.js';
import { DEFAULT_KEYS_FILE } from './signing-keys.js';

const rawPort = process.env.SHIELD_IDP_PORT;
const port = rawPort === undefined || rawPort === '' ? DEFAULT_DEV_IDP_PORT : Number(rawPort);
const keysFile = resolve(process.env.SHIELD_IDP_KEYS_FILE ?? DEFAULT_KEYS_FILE);

try {
  const audience = process.env.SHIELD_IDP_AUDIENCE;
  const pkiDir = process.env.SHIELD_PKI_DIR;
  const idp = await startDevIdp({
    port,
    keysFile,
    ...(audience ? { audience } : {}),
    ...(pkiDir ? { pkiDir: resolve(pkiDir) } : {}),
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
