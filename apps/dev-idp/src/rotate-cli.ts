#!/usr/bin/env node
/**
 * Entry point of `npm run idp:rotate [-- --keys-file <file>]`: put a new signing key first in the
 * dev IdP's key set; the previous keys stay so tokens they signed keep verifying. A running IdP
 * started with `npm run idp` notices the change and serves the new set within a few seconds.
 * Prints the new `kid` on stdout.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_KEYS_FILE, rotateDevIdpKeys } from './signing-keys.js';

try {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      'keys-file': { type: 'string', default: process.env.SHIELD_IDP_KEYS_FILE ?? DEFAULT_KEYS_FILE },
    },
  });
  const keys = await rotateDevIdpKeys(values['keys-file']);
  process.stdout.write(`${keys.keys[0]?.kid ?? ''}\n`);
  process.stderr.write(
    `rotated ${values['keys-file']}: ${keys.keys.length} keys, the new one signs from now on\n`,
  );
} catch (err) {
  process.stderr.write(`idp:rotate: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
