/**
 * @inference-shield/https: an HTTPS-only bootstrap for Nest (Express and Fastify): TLS 1.2+ with ECDHE+AEAD
 * suites, plain HTTP refused on the TLS port, security headers, inbound mTLS, certificate rotation
 * without restart, size and time limits, graceful shutdown.
 */
export {
  createHttpsApp,
  isHttpsDraining,
  type HttpsApp,
  type HttpsAdapterChoice,
  type HttpsListenResult,
} from './https.bootstrap.js';
export { resolveHttpsOptions } from './https-options.resolver.js';
export type {
  HttpsBootstrapOptions,
  ResolvedHttpsOptions,
  HttpsTlsOptions,
  HttpsTlsSource,
  HttpsCaFromTlsSource,
  HttpsMtlsOptions,
  HttpsHeadersOptions,
  HttpsLimitsOptions,
  HttpsTimeoutsOptions,
  HttpsReloadOptions,
  HttpsRedirectOptions,
  HttpsNestOptions,
  HttpsCertificateInfo,
  HttpsMinVersion,
  HttpsTls12Cipher,
} from './https-options.interface.js';
export { peerCertificateOf, peerX509CertificateOf, tlsSocketOf } from './peer-certificate.js';
export {
  TLS12_CIPHERS,
  TLS13_CIPHERS,
  ECDH_CURVES,
  PQ_ECDH_CURVES,
  keyExchangeGroups,
  type KeyExchangeGroups,
} from './tls-policy.js';
export { Consumes, type ConsumableMediaType, type ConsumesOptions } from './consumes.decorator.js';
