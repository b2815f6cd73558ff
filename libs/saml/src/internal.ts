/**
 * `@inference-shield/saml/internal`: the SAML package's parts that its own tests and our other
 * packages use (the option resolver, the validator, the controller and service, the OAuth error
 * mapping). Not a public API: names here may change in any release. Applications import
 * `@inference-shield/saml`.
 */
export * from './index.js';
export { SamlController } from './saml.controller.js';
export { SamlService, type SamlAcsResult } from './saml.service.js';
export type { ResolvedSamlIdentityProvider, ResolvedSamlOptions } from './saml-options.interface.js';
export { resolveSamlOptions } from './saml-options.js';
export { SamlValidator } from './saml-validator.js';
export { toOAuthErrorResponse, type OAuthErrorCode, type OAuthErrorResponse } from './oauth-error.mapping.js';
export { OAuthTokenExceptionFilter } from './oauth-token-exception.filter.js';
export { SAML_OPTIONS } from './saml.constants.js';
