import { join, resolve } from 'node:path';

/**
 * The sample model server's configuration, read once from the environment at start-up. Every
 * variable has a default that matches the local stack of `npm start`; a malformed value stops the
 * process with a message naming the variable (never its value when it may be a secret).
 */
export interface SampleConfig {
  readonly host: string;
  readonly port: number;
  readonly tls: { readonly cert: string; readonly key: string };
  readonly mtlsCa: string;
  readonly mtlsCrl?: string;
  readonly oidc: { readonly issuer: string; readonly audience: string; readonly ca: string };
  readonly llm: {
    readonly baseUrl: string;
    readonly ca: string;
    readonly clientCert: string;
    readonly clientKey: string;
    readonly apiKeyFile: string;
    readonly model: string;
  };
  readonly serviceId: string;
}

/** The variables the sample reads, with their defaults (documented in docs/configuration.md). */
export function loadSampleConfig(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  const pki = resolve(env.SHIELD_PKI_DIR || '.shield/pki');
  const port = intVar(env, 'SHIELD_MODEL_PORT', 8443);
  const str = (name: string, fallback: string): string => {
    const v = env[name];
    return v === undefined || v === '' ? fallback : v;
  };
  const audience = str('SHIELD_OIDC_AUDIENCE', `https://localhost:${port}`);
  const crl = env.SHIELD_MTLS_CRL;
  return Object.freeze({
    host: str('SHIELD_MODEL_HOST', '127.0.0.1'),
    port,
    tls: Object.freeze({
      cert: str('SHIELD_TLS_CERT', join(pki, 'localhost.pem')),
      key: str('SHIELD_TLS_KEY', join(pki, 'localhost-key.pem')),
    }),
    mtlsCa: str('SHIELD_MTLS_CA', join(pki, 'ca.pem')),
    ...(crl ? { mtlsCrl: crl } : {}),
    oidc: Object.freeze({
      issuer: str('SHIELD_OIDC_ISSUER', 'https://localhost:9443'),
      audience,
      ca: str('SHIELD_OIDC_CA', join(pki, 'ca.pem')),
    }),
    llm: Object.freeze({
      baseUrl: str('SHIELD_LLM_URL', 'https://localhost:9444/v1'),
      ca: str('SHIELD_LLM_CA', join(pki, 'ca.pem')),
      clientCert: str('SHIELD_LLM_CLIENT_CERT', join(pki, 'clients', 'sample-model.pem')),
      clientKey: str('SHIELD_LLM_CLIENT_KEY', join(pki, 'clients', 'sample-model-key.pem')),
      apiKeyFile: str('SHIELD_LLM_API_KEY_FILE', join(pki, 'llm-api-key')),
      model: str('SHIELD_LLM_MODEL', 'standin-chat'),
    }),
    serviceId: str('SHIELD_SERVICE_ID', audience),
  });
}

function intVar(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new TypeError(`${name} must be a port number from 0 to 65535, got ${JSON.stringify(raw)}`);
  }
  return n;
}
