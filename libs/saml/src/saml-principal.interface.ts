/**
 * Who a verified SAML assertion says signed in: the same facts, whichever way in (browser SSO or
 * RFC 7522 grant). Frozen; `subject` is the NameID exactly as signed.
 */
export interface SamlPrincipal {
  readonly method: 'saml';
  /** The NameID of the verified assertion. */
  readonly subject: string;
  /** The IdP entity ID (the assertion `Issuer`). */
  readonly issuer: string;
  /** The configured name of that IdP. */
  readonly idp: string;
  /** Scopes granted by the IdP's attribute mapping. */
  readonly scopes: readonly string[];
  /** Roles granted by the IdP's attribute mapping. */
  readonly roles: readonly string[];
  readonly nameIdFormat: string | undefined;
  readonly sessionIndex: string | undefined;
  /** When the IdP authenticated the user (`AuthnInstant`). */
  readonly authnInstant: Date | undefined;
  /** The IdP's limit on the session (`SessionNotOnOrAfter`): local tokens never outlive it. */
  readonly sessionNotOnOrAfter: Date | undefined;
  /** The assertion `ID`, recorded in the replay cache. */
  readonly assertionId: string;
  /** When the assertion stops being acceptable. */
  readonly expiresAt: Date;
  /** Every attribute with text values, for the application; only mapped scopes and roles reach tokens. */
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}
