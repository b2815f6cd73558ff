import type { IssuerOptions } from '@inference-shield/identity';
import type { SamlTokenSigner } from './saml-token.signer.js';

/**
 * The `IdentityModule` issuer entry that accepts this module's local tokens: inline public key
 * (never fetched), ES256 only, RFC 9068 `at+jwt` required, principal method `saml`.
 *
 * @example
 * IdentityModule.forRootAsync({
 *   inject: [SamlTokenSigner],
 *   useFactory: (signer: SamlTokenSigner) => ({ oidc: { issuers: [samlLocalIssuer(signer)] } }),
 * })
 */
export function samlLocalIssuer(signer: SamlTokenSigner): IssuerOptions {
  return {
    issuer: signer.issuer,
    audience: [...signer.audience],
    jwks: { keys: signer.jwks.keys.map((k) => ({ ...k })) },
    algorithms: ['ES256'],
    requireAccessTokenType: true,
    method: 'saml',
  };
}
