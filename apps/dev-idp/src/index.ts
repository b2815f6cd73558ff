/**
 * @inference-shield/dev-idp: a local OpenID provider (oidc-provider) for development and tests.
 * DEV ONLY. `client_credentials` tokens as RFC 9068 JWTs (`typ: at+jwt`) for the audiences of a
 * clients file, persisted rotating ES256 keys, RFC 8705 mTLS client authentication and
 * certificate-bound tokens. Bins: `shield-idp`, `shield-token`, `shield-idp-rotate`.
 */
export { startDevIdp, type DevIdp, type DevIdpTokenOptions } from './dev-idp.server.js';
export {
  resolveDevIdpOptions,
  defaultClientsFile,
  DEFAULT_DEV_IDP_PORT,
  type DevIdpOptions,
} from './dev-idp.options.js';
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
  discoverTokenEndpoint,
  DevIdpTokenError,
  DevIdpUnreachableError,
  type ClientCertificate,
  type AccessTokenRequest,
} from './token-client.js';
