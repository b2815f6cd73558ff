#!/usr/bin/env node
/**
 * `shield-llm-standin` (and `npm run llm-standin` in this repository): the stand-in hosted LLM as a
 * process. DEVELOPMENT ONLY.
 *
 * Environment: SHIELD_PKI_DIR (default `.shield/pki`, created if missing), SHIELD_LLM_PORT (9444),
 * SHIELD_LLM_HOST (127.0.0.1), SHIELD_LLM_TOKEN_DELAY_MS (20), SHIELD_LLM_API_KEY (a static key
 * also accepted; default none: keyless, tokens from `POST /oauth/token` only), SHIELD_LLM_RATE_LIMITED_MODELS
 * (comma-separated model ids, or `*`: answer them 429) and SHIELD_LLM_RETRY_AFTER_SECONDS (1).
 */
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

/**
 * A static API key only when SHIELD_LLM_API_KEY names one (for clients of providers that offer
 * nothing else). Without it the stand-in is keyless: it accepts only the short-lived tokens its
 * token endpoint issues, and no key file is ever written.
 */
function devApiKey(): string | undefined {
  const fromEnv = process.env.SHIELD_LLM_API_KEY;
  return fromEnv !== undefined && fromEnv.trim() !== '' ? fromEnv.trim() : undefined;
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
  SHIELD_LLM_API_KEY         also accept this static key; default none (keyless: only tokens
                             from POST /oauth/token, exchanged for the client certificate)
  SHIELD_LLM_TOKEN_TTL_SECONDS  lifetime of issued tokens; default 300
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
  const key = devApiKey();
  const standin = await createLlmStandin({
    port: intFromEnv('SHIELD_LLM_PORT', 9444, 0, 65535),
    host: process.env.SHIELD_LLM_HOST ?? '127.0.0.1',
    cert: pki.serverCert,
    key: pki.serverKey,
    ca: pki.caCert,
    // OpenAI's X.509 workload identity flow: the client certificate is exchanged for a token.
    tokenEndpoint: { tokenTtlSeconds: intFromEnv('SHIELD_LLM_TOKEN_TTL_SECONDS', 300, 1, 3600) },
    ...(key !== undefined ? { apiKeys: [key] } : { requireIssuedTokens: true }),
    tokenDelayMs: intFromEnv('SHIELD_LLM_TOKEN_DELAY_MS', 20, 0, 10_000),
    ...rateLimitFromEnv(),
  });
  // Where credentials come from, never a key or a token.
  console.warn(
    `stand-in hosted LLM on ${standin.url} (client certificate from ${pki.caCert} required; tokens from ${standin.url}/oauth/token${key !== undefined ? '; static key from SHIELD_LLM_API_KEY also accepted' : ''})`,
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
