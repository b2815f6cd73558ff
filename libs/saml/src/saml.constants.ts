/** SAML 2.0 protocol namespace (SAML core §2.1): `samlp:Response`, `Status`, `AuthnRequest`. */
export const SAML_PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
/** SAML 2.0 assertion namespace (SAML core §2.1): `saml:Assertion`, `Issuer`, `Subject`... */
export const SAML_ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
/** XML Signature namespace. */
export const XMLDSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
/** XML Encryption namespace (encrypted assertions are refused: we hold no decryption key). */
export const XMLENC_NS = 'http://www.w3.org/2001/04/xmlenc#';

/** The top-level status a login response must carry (SAML core §3.2.2.2). */
export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
/** The only subject confirmation method we accept (SAML profiles §4.1.4.2, RFC 7522 §3). */
export const CM_BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
/** HTTP-POST binding, where the IdP must deliver its response (SAML bindings §3.5). */
export const BINDING_HTTP_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
/** HTTP-Redirect binding, how our AuthnRequest travels (SAML bindings §3.4). */
export const BINDING_HTTP_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
/** RFC 7522 §2.1: the grant type of the SAML 2.0 bearer assertion grant. */
export const SAML2_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:saml2-bearer';

/** Exclusive canonicalization without comments: the only c14n we accept (comments never count). */
export const C14N_EXCLUSIVE = 'http://www.w3.org/2001/10/xml-exc-c14n#';
/** The enveloped-signature transform of a signature carried inside the element it signs. */
export const TRANSFORM_ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/** Signature algorithms accepted in `SignatureMethod`. SHA-1 is refused (collisions are practical). */
export const ACCEPTED_SIGNATURE_ALGORITHMS: ReadonlySet<string> = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
]);
/** Digest algorithms accepted in `DigestMethod`. */
export const ACCEPTED_DIGEST_ALGORITHMS: ReadonlySet<string> = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);

/** Injection token of the resolved, frozen SAML options. */
export const SAML_OPTIONS: unique symbol = Symbol.for('@inference-shield/saml:options');
/** Injection token of the SAML module's audit sink. */
export const SAML_AUDIT_SINK: unique symbol = Symbol.for('@inference-shield/saml:audit-sink');

/** Route paths served by `SamlController`. */
export const SAML_ROUTES = Object.freeze({
  login: '/saml/login',
  acs: '/saml/acs',
  metadata: '/saml/metadata',
  jwks: '/saml/jwks',
  token: '/oauth/token',
});

/** An IdP's short name (`GET /saml/login?idp=<name>`): lowercase letters, digits and "-", at most 32. */
export const IDP_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
