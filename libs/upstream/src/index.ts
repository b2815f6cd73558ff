/**
 * `@inference-shield/upstream`: outbound calls to upstream models over verified (m)TLS, and a streaming proxy
 * that forwards a Nest route to an upstream without leaking the caller's credentials.
 */
export { UpstreamModule } from './upstream.module.js';
export { InjectUpstream, InjectUpstreamProxy, InjectUpstreamRegistry } from './inject.decorators.js';
export {
  UpstreamClient,
  type UpstreamFetch,
  type UpstreamMethod,
  type UpstreamRequestOptions,
  type UpstreamResponse,
  type UpstreamClientHooks,
} from './upstream.client.js';
export {
  UpstreamProxy,
  type ProxyForwardOptions,
  type ProxyInboundRequest,
  type ProxyOutboundResponse,
} from './upstream.proxy.js';
export { UpstreamRegistry, createUpstreamRegistry } from './upstream.registry.js';
export { CALLER_ASSERTION_TYPE, type CallerAssertionJwks } from './caller-assertion.js';
export { spkiPin } from './spki-pin.js';
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
export { upstreamClientToken, upstreamProxyToken, DEFAULT_ASSERTION_HEADER } from './upstream.constants.js';
export type {
  UpstreamModuleOptions,
  UpstreamOptions,
  UpstreamClientCertificateOptions,
  UpstreamTlsSource,
  UpstreamTimeoutOptions,
  UpstreamPoolOptions,
  UpstreamEgressProxyOptions,
  UpstreamProxyOptions,
  UpstreamSecretSource,
  CallerIdentity,
  CallerResolver,
  CallerAssertionOptions,
} from './upstream-options.interface.js';
