/**
 * @inference-shield/saml: SAML 2.0 assertions as a way in (browser SSO and the RFC 7522 bearer grant),
 * verified on top of node-saml with the checks it leaves open, and exchanged for short-lived
 * local access tokens that `@inference-shield/identity` accepts as method `saml`.
 */
export { SamlModule } from './saml.module.js';
export { SAML_ASYNC_OPTIONS_TYPE, SAML_OPTIONS_TYPE } from './saml.module-definition.js';
export type {
  SamlClaimMapping,
  SamlClaimRule,
  SamlGrantOptions,
  SamlIdentityProviderOptions,
  SamlModuleOptions,
  SamlTokenOptions,
} from './saml-options.interface.js';
export type { SamlPrincipal } from './saml-principal.interface.js';
export { SamlTokenSigner, type SamlAccessTokenResponse, type SamlJwks } from './saml-token.signer.js';
export { samlLocalIssuer } from './saml-local-issuer.js';
export { MemorySamlReplayCache, type SamlReplayCache } from './saml-replay-cache.js';
export { MemorySamlRequestStore, type SamlRequestStore } from './saml-request-store.js';
export {
  RedisSamlReplayCache,
  RedisSamlRequestStore,
  type RedisSamlStoreOptions,
} from './redis-saml-stores.js';
export { LoggerSamlAuditSink, type SamlAuditEvent, type SamlAuditSink } from './saml-audit.js';
export { SAML2_BEARER_GRANT_TYPE } from './saml.constants.js';
