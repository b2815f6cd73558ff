#!/usr/bin/env node
/** Entry of `npm run pki -- init ...`: see {@link runDevPkiCli}. */
import { runDevPkiCli } from './dev-pki.cli.js';

process.exitCode = await runDevPkiCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
