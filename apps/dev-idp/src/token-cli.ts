#!/usr/bin/env node
/**
 * Entry point of `npm run -s token -- --scope "..."`: prints only the access token on stdout.
 * See {@link runTokenCommand} for the options.
 */
import { runTokenCommand } from './token.command.js';

process.exitCode = await runTokenCommand(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
});
