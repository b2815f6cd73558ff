import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import type { ResolvedSamlIdentityProvider, ResolvedSamlOptions } from './saml-options.interface.js';
import { BINDING_HTTP_POST, SAML_ASSERTION_NS, SAML_PROTOCOL_NS } from './saml.constants.js';

/** An AuthnRequest ready to send with the HTTP-Redirect binding. */
export interface SamlAuthnRequest {
  /** The request `ID`, which the response's `InResponseTo` must carry back. */
  readonly id: string;
  /** The IdP URL to redirect the browser to (`SAMLRequest` and `RelayState` in the query). */
  readonly redirectUrl: string;
}

function xmlAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/>/g, '&gt;');
}

/**
 * Builds an unsigned `AuthnRequest` (SAML core §3.4.1) for the HTTP-Redirect binding (SAML
 * bindings §3.4.4.1: DEFLATE, base64, URL-encode). Every value in it comes from configuration
 * or is generated here; nothing from the request that triggered the login.
 */
export function buildAuthnRequest(
  options: ResolvedSamlOptions,
  idp: ResolvedSamlIdentityProvider,
  relayState: string | undefined,
  mintedId?: string,
): SamlAuthnRequest {
  // 160 random bits, or an ID minted by the request store; IDs start with "_" (xs:ID).
  const id = mintedId ?? `_${randomBytes(20).toString('hex')}`;
  const xml =
    `<samlp:AuthnRequest xmlns:samlp="${SAML_PROTOCOL_NS}" xmlns:saml="${SAML_ASSERTION_NS}"` +
    ` ID="${id}" Version="2.0" IssueInstant="${new Date().toISOString()}"` +
    ` Destination="${xmlAttr(idp.ssoUrl)}" ProtocolBinding="${BINDING_HTTP_POST}"` +
    ` AssertionConsumerServiceURL="${xmlAttr(options.serviceProvider.acsUrl)}">` +
    `<saml:Issuer>${xmlAttr(options.serviceProvider.entityId)}</saml:Issuer>` +
    `<samlp:NameIDPolicy Format="${xmlAttr(idp.nameIdFormat)}" AllowCreate="true"/>` +
    `</samlp:AuthnRequest>`;
  const url = new URL(idp.ssoUrl);
  url.searchParams.set('SAMLRequest', deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'));
  if (relayState !== undefined) url.searchParams.set('RelayState', relayState);
  return { id, redirectUrl: url.href };
}
