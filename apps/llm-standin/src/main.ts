#!/usr/bin/env node
/**
 * `shield-llm-standin` (and `npm run llm-standin` in this repository): the stand-in hosted LLM as a
 * process. DEVELOPMENT ONLY.
 *
 * Environment: SHIELD_PKI_DIR (default `.shield/pki`, created if missing), SHIELD_LLM_PORT (9444),
 * SHIELD_LLM_HOST (127.0.0.1), SHIELD_LLM_TOKEN_DELAY_MS (20), SHIELD_LLM_API_KEY (default: the
 * key in `<pki dir>/llm-api-key`, created with a random key if missing), SHIELD_LLM_RATE_LIMITED_MODELS
 * (comma-separated model ids, or `*`: answer them 429) and SHIELD_LLM_RETRY_AFTER_SECONDS (1).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { initDevPki } from '@inference-shield/dev-pki';
import { createLlmStandin, type StandinRateLimit } from './llm-standin.server.js';

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The dev API key: from the environment, else a file beside the dev PKI (mode 0600). */
function devApiKey(dir: string): { key: string; source: string } {
  const fromEnv = process.env.SHIELD_LLM_API_KEY;
  if (fromEnv !== undefined && fromEnv !== '') return { key: fromEnv.trim(), source: 'SHIELD_LLM_API_KEY' };
  const file = join(dir, 'llm-api-key');
  if (!existsSync(file)) {
    writeFileSync(file, `sk-standin-${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  }
  return { key: readFileSync(file, 'utf8').trim(), source: file };
}

/** The 429 mode, when SHIELD_LLM_RATE_LIMITED_MODELS names models. */
function rateLimitFromEnv(): { rateLimited?: StandinRateLimit } {
  const models = (process.env.SHIELD_LLM_RATE_LIMITED_MODELS ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '');
  if (models.length === 0) return {};
  return {
    rateLimited: { models, retryAfterSeconds: intFromEnv('SHIELD_LLM_RETRY_AFTER_SECONDS', 1, 0, 86_400) },
  };
}

const USAGE = `usage: shield-llm-standin   (DEVELOPMENT ONLY: a stand-in for a hosted LLM API)

OpenAI-compatible over mutual TLS on https://localhost:9444/v1. Configured by environment:
  SHIELD_PKI_DIR             dev PKI (created when missing); default .shield/pki
  SHIELD_LLM_PORT            default 9444;  SHIELD_LLM_HOST  default 127.0.0.1
  SHIELD_LLM_TOKEN_DELAY_MS  pause before each streamed token; default 20
  SHIELD_LLM_API_KEY         the accepted key; default the key in <pki dir>/llm-api-key (created)
  SHIELD_LLM_RATE_LIMITED_MODELS  answer these models (comma-separated, or *) 429; default none
  SHIELD_LLM_RETRY_AFTER_SECONDS  retry-after of those 429s; default 1
Clients present a certificate issued by <pki dir>/ca.pem (shield-pki init --client <name>).
`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  if (args.length > 0) {
    process.stderr.write(`shield-llm-standin: unknown argument ${JSON.stringify(args[0])}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const pki = await initDevPki({ dir: process.env.SHIELD_PKI_DIR ?? '.shield/pki' });
  const { key, source } = devApiKey(pki.dir);
  const standin = await createLlmStandin({
    port: intFromEnv('SHIELD_LLM_PORT', 9444, 0, 65535),
    host: process.env.SHIELD_LLM_HOST ?? '127.0.0.1',
    cert: pki.serverCert,
    key: pki.serverKey,
    ca: pki.caCert,
    apiKeys: [key],
    tokenDelayMs: intFromEnv('SHIELD_LLM_TOKEN_DELAY_MS', 20, 0, 10_000),
    ...rateLimitFromEnv(),
  });
  // The key's location, never the key.
  console.warn(
    `stand-in hosted LLM on ${standin.url} (client certificate from ${pki.caCert} required; API key in ${source})`,
  );
  const stop = (): void => {
    void standin.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
