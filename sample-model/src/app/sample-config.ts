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
    /**
     * A static API key file: only when SHIELD_LLM_API_KEY_FILE names one. Without it (the default)
     * the sample is keyless: it exchanges its client certificate at `tokenUrl` for a short-lived
     * token (OpenAI's X.509 workload identity flow).
     */
    readonly apiKeyFile?: string;
    /** The token endpoint of the certificate exchange; default `<origin of baseUrl>/oauth/token`. */
    readonly tokenUrl: string;
    /** The audience of the JWT-SVID exchanged there (with `spiffe`); default the origin of `baseUrl`. */
    readonly tokenAudience: string;
    readonly model: string;
    /**
     * Readiness and the LLM (SHIELD_LLM_READINESS): `report` (default) puts its reachability in
     * `/health/ready` and stays ready when it is down or refuses our certificate (the KServe
     * routes still serve); `required` makes the sample not ready then.
     */
    readonly readiness: 'report' | 'required';
  };
  readonly serviceId: string;
  /**
   * The SPIFFE Workload API (SPIFFE_ENDPOINT_SOCKET, e.g. `unix:///run/spire/agent.sock`): when set,
   * the LLM is called with the X.509-SVID as client certificate and a token exchanged for a JWT-SVID.
   */
  readonly spiffe?: { readonly socket: string };
  /**
   * Redis shared by replicas (SHIELD_REDIS_URL, e.g. `redis://redis:6379`): when set, the relay's
   * budgets and the DPoP replay store live there, so they hold across every replica.
   */
  readonly redisUrl?: string;
  /**
   * The public origin that DPoP proofs name in `htu` (SHIELD_DPOP_ORIGIN, e.g.
   * `https://models.example`): when set, DPoP-bound tokens are accepted (RFC 9449).
   */
  readonly dpopOrigin?: string;
  /** Requests per minute of each caller on the `/v1` relay (SHIELD_LLM_REQUESTS_PER_MINUTE, default 60). */
  readonly llmRequestsPerMinute: number;
  /**
   * How long SIGTERM keeps serving with readiness at 503 before the listener closes
   * (SHIELD_DRAIN_DELAY_MS, default 0, at most 600000): the `timeouts.drainDelayMs` of the bootstrap.
   */
  readonly drainDelayMs: number;
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
      ...(env.SHIELD_LLM_API_KEY_FILE ? { apiKeyFile: env.SHIELD_LLM_API_KEY_FILE } : {}),
      tokenUrl: str('SHIELD_LLM_TOKEN_URL', tokenUrlOf(str('SHIELD_LLM_URL', 'https://localhost:9444/v1'))),
      tokenAudience: str(
        'SHIELD_LLM_TOKEN_AUDIENCE',
        originOf(str('SHIELD_LLM_URL', 'https://localhost:9444/v1')),
      ),
      model: str('SHIELD_LLM_MODEL', 'standin-chat'),
      readiness: readinessVar(env, 'SHIELD_LLM_READINESS'),
    }),
    serviceId: str('SHIELD_SERVICE_ID', audience),
    ...(env.SPIFFE_ENDPOINT_SOCKET ? { spiffe: Object.freeze({ socket: env.SPIFFE_ENDPOINT_SOCKET }) } : {}),
    ...(env.SHIELD_REDIS_URL ? { redisUrl: env.SHIELD_REDIS_URL } : {}),
    ...(env.SHIELD_DPOP_ORIGIN ? { dpopOrigin: env.SHIELD_DPOP_ORIGIN } : {}),
    llmRequestsPerMinute: countVar(env, 'SHIELD_LLM_REQUESTS_PER_MINUTE', 60),
    drainDelayMs: msVar(env, 'SHIELD_DRAIN_DELAY_MS', 0),
  });
}

/** `<origin>/oauth/token` of the LLM's URL (where the stand-in, like OpenAI's auth host, serves it). */
function tokenUrlOf(llmUrl: string): string {
  // A malformed SHIELD_LLM_URL is reported by the upstream options check, naming the field.
  return URL.parse('/oauth/token', llmUrl)?.href ?? llmUrl;
}

/** The origin of the LLM's URL: the audience its token endpoint expects by default. */
function originOf(llmUrl: string): string {
  return URL.parse(llmUrl)?.origin ?? llmUrl;
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

function countVar(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw new TypeError(`${name} must be an integer from 1 to 1000000, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function readinessVar(env: NodeJS.ProcessEnv, name: string): 'report' | 'required' {
  const raw = env[name];
  if (raw === undefined || raw === '' || raw === 'report') return 'report';
  if (raw === 'required') return 'required';
  throw new TypeError(`${name} must be "report" or "required", got ${JSON.stringify(raw.slice(0, 40))}`);
}

function msVar(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 600_000) {
    throw new TypeError(`${name} must be an integer from 0 to 600000 (ms), got ${JSON.stringify(raw)}`);
  }
  return n;
}
