/**
 * apps/dev-idp: a local OpenID provider (oidc-provider) for development and tests. DEV ONLY.
 * `client_credentials` tokens as RFC 9068 JWTs (`typ: at+jwt`) for one audience, persisted
 * rotating ES256 keys, RFC 8705 mTLS client authentication and certificate-bound tokens.
 */
export { startDevIdp, type DevIdp, type DevIdpTokenOptions } from './dev-idp.server.js';
export { resolveDevIdpOptions, DEFAULT_DEV_IDP_PORT, type DevIdpOptions } from './dev-idp.options.js';
export {
  rotateDevIdpKeys,
  readKeySet,
  MAX_OLD_KEYS,
  DEFAULT_KEYS_FILE,
  type DevIdpPrivateJwks,
  type DevIdpSigningJwk,
} from './signing-keys.js';
export {
  loadDevIdpClientsFile,
  parseDevIdpClientsConfig,
  type DevIdpClientsConfig,
  type DevIdpClient,
  type DevIdpResource,
  type DevIdpAuthMethod,
} from './clients-config.js';
export {
  requestAccessToken,
  DevIdpTokenError,
  DevIdpUnreachableError,
  type ClientCertificate,
  type AccessTokenRequest,
} from './token-client.js';
