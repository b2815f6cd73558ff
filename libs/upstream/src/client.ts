/**
 * `@inference-shield/upstream/client`: the outbound mTLS client without Nest. A plain Node script
 * (ESM or CommonJS) calls an upstream model with the same verified, pinned, pooled connections the
 * Nest module uses, and hands its `fetch` to the OpenAI SDK. Loads no Nest package.
 *
 * @example
 * import OpenAI from 'openai';
 * import { createUpstreamClient } from '@inference-shield/upstream/client';
 *
 * const llm = await createUpstreamClient('llm', {
 *   baseUrl: 'https://mtls.api.openai.com/v1',
 *   clientCertificate: { cert: 'client.pem', key: 'client-key.pem' },
 *   apiKey: { env: 'OPENAI_API_KEY' },
 * });
 * const openai = new OpenAI({ baseURL: llm.baseUrl, apiKey: 'set-by-upstream', fetch: llm.fetch });
 * // ...
 * await llm.close();
 */
import { UpstreamClient, type UpstreamClientHooks } from './upstream.client.js';
import type { UpstreamOptions } from './upstream-options.interface.js';
import { resolveUpstreamOptions } from './upstream-options.resolver.js';
import { tlsVerificationDisabledByEnv } from './upstream-tls.js';

let warnedTlsEnv = false;

/**
 * Check `options` as `UpstreamModule` does (a bad field throws a `TypeError` naming it), load the
 * TLS material (a bad file throws a `ShieldError` `ERR_CERT_*`), and build the connection pool.
 * Call `close()` when done.
 */
export async function createUpstreamClient(
  name: string,
  options: UpstreamOptions,
  hooks: UpstreamClientHooks = {},
): Promise<UpstreamClient> {
  if (!warnedTlsEnv && tlsVerificationDisabledByEnv()) {
    warnedTlsEnv = true;
    process.emitWarning(
      'NODE_TLS_REJECT_UNAUTHORIZED=0 is set: it has no effect on upstream connections (verification is always on), but it disables certificate checks for any other TLS client in this process. Remove it.',
      { code: 'SHIELD_TLS_ENV' },
    );
  }
  return UpstreamClient.create(resolveUpstreamOptions(name, options), hooks);
}

export {
  UpstreamClient,
  type UpstreamClientHooks,
  type UpstreamFetch,
  type UpstreamMethod,
  type UpstreamRequestOptions,
  type UpstreamResponse,
} from './upstream.client.js';
export type {
  UpstreamOptions,
  UpstreamClientCertificateOptions,
  UpstreamTimeoutOptions,
  UpstreamPoolOptions,
  UpstreamEgressProxyOptions,
  UpstreamSecretSource,
} from './upstream-options.interface.js';
export type { UpstreamStats } from './upstream-stats.js';
export type { UpstreamCertificateValidity } from './upstream.telemetry.js';
export type {
  UpstreamCredentialOptions,
  UpstreamClientCredentialsOptions,
  UpstreamTokenExchangeOptions,
  UpstreamCertificateExchangeOptions,
  UpstreamTokenEndpointOptions,
  UpstreamClientAuthOptions,
  UpstreamCredentialSecretSource,
  UpstreamSubjectTokenSource,
  UpstreamCallerSubjectToken,
  UpstreamSubjectTokenProvider,
  UpstreamSubjectToken,
} from './credentials/credential-options.interface.js';
export type { CredentialStats } from './credentials/refreshing-token.js';
export { spkiPin } from './spki-pin.js';
export { ShieldError, isShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
