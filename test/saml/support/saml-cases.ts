/**
 * The docs/threat-model.md "SAML" rows as tables of cases, shared by the validator spec (function calls)
 * and the HTTP spec (ACS and token endpoint): each builds a hostile message from a real signed
 * one, at test time, and names the code it must be refused with.
 */
import type { ShieldErrorCode } from '@inference-shield/core';
import {
  addSecondAssertion,
  changeDestinationAfterSigning,
  changeNameIdAfterSigning,
  commentInDigestValue,
  commentInNameId,
  entityExpansion,
  externalEntity,
  resign,
  stripAssertionSignature,
  twoKeyInfo,
  twoSignedInfo,
  withStatus,
  XSW,
  type XswTarget,
} from './saml-attacks.js';
import {
  base64,
  base64url,
  signElement,
  STATUS_REQUESTER,
  type SigningIdentity,
  type TestIdp,
} from './test-idp.js';

export const SP_ENTITY_ID = 'https://sp.shield.local/saml';
export const TOKEN_ISSUER = 'https://sp.shield.local';
export const TOKEN_AUDIENCE = 'inference';
export const IDP_ENTITY_ID = 'https://idp.example/saml/metadata';
export const OTHER_IDP_ENTITY_ID = 'https://other-idp.example/saml';

/** What the cases are built from. */
export interface CaseContext {
  /** The configured IdP, with its pinned key. */
  readonly idp: TestIdp;
  /** A second configured IdP (its own pinned key). */
  readonly otherIdp: TestIdp;
  /** A key nobody configured. */
  readonly attacker: SigningIdentity;
  readonly maxMessageBytes: number;
}

/** One hostile (or valid) input: the parameter value as sent, and the expected refusal code. */
export interface SamlCase {
  readonly name: string;
  /** `undefined`: must be accepted. */
  readonly code: ShieldErrorCode | undefined;
  /** Builds the parameter value (`SAMLResponse` base64, or `assertion` base64url). */
  readonly build: (ctx: CaseContext) => string;
}

const MIN = 60_000;
const ago = (ms: number): Date => new Date(Date.now() - ms);
const ahead = (ms: number): Date => new Date(Date.now() + ms);
const SHA1_SIG = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';

const xswTargets: XswTarget[] = ['assertion', 'response'];

/** Expected code of each XSW variant: all leave two copies of the signed element, or put it somewhere SAML never does. */
function xswCode(variant: string, target: XswTarget): ShieldErrorCode {
  // On the response, XSW3 and XSW5 need a second document root: not even well-formed XML.
  if (target === 'response' && (variant === 'XSW3' || variant === 'XSW5')) return 'ERR_SAML_MALFORMED';
  return 'ERR_SAML_STRUCTURE_INVALID';
}

/** Browser SSO (`SAMLResponse` at the ACS). The IdP is configured with `allowIdpInitiated: true`. */
export const ACS_CASES: readonly SamlCase[] = [
  { name: 'valid response, assertion signed', code: undefined, build: ({ idp }) => base64(idp.response()) },
  {
    name: 'valid response with an XML declaration, base64 wrapped at 76 columns',
    code: undefined,
    build: ({ idp }) =>
      base64(`<?xml version="1.0" encoding="UTF-8"?>${idp.response()}`).replace(/(.{76})/g, '$1\r\n'),
  },
  {
    name: 'valid response with an XML declaration and a line break before the root (pretty-printed)',
    code: undefined,
    build: ({ idp }) => base64(`<?xml version="1.0" encoding="UTF-8"?>\n${idp.response()}\n`),
  },
  {
    name: 'valid response, response and assertion signed',
    code: undefined,
    build: ({ idp }) => base64(idp.response({ signResponse: true })),
  },
  ...Object.keys(XSW).flatMap((variant) =>
    xswTargets.map((target): SamlCase => ({
      name: `${variant} on the ${target}`,
      code: xswCode(variant, target),
      build: ({ idp }) =>
        base64(
          (XSW[variant] as (x: string, t: XswTarget) => string)(idp.response({ signResponse: true }), target),
        ),
    })),
  ),
  {
    name: 'comment injected into NameID (truncation)',
    code: 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) =>
      base64(commentInNameId(idp.response({ assertion: { nameId: 'admin@example.com.evil.example' } }))),
  },
  {
    name: 'assertion signature stripped',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64(stripAssertionSignature(idp.response())),
  },
  {
    name: 'NameID changed after signing',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64(changeNameIdAfterSigning(idp.response())),
  },
  {
    name: 'signed response: Destination changed after signing',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) =>
      base64(changeDestinationAfterSigning(idp.response({ signResponse: true }), idp.target.acsUrl + '?x')),
  },
  {
    name: 'unsigned assertion inside a signed response',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64(idp.response({ signAssertion: false, signResponse: true })),
  },
  {
    name: 'signed with an attacker key carried in KeyInfo',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp, attacker }) => base64(idp.response({ signWith: attacker, signResponse: true })),
  },
  {
    name: 'tampered, then re-signed with an attacker key',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp, attacker }) =>
      base64(
        resign(stripAssertionSignature(changeNameIdAfterSigning(idp.response())), 'Assertion', attacker),
      ),
  },
  {
    name: 'issuer mix-up: claims the other IdP, signed with this IdP key',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp, otherIdp }) =>
      base64(idp.response({ issuer: otherIdp.entityId, assertion: { issuer: otherIdp.entityId } })),
  },
  {
    name: 'two assertions',
    code: 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) => base64(addSecondAssertion(idp.response(), idp.response())),
  },
  {
    name: 'two roots',
    code: 'ERR_SAML_MALFORMED',
    build: ({ idp }) => base64(idp.response() + idp.response()),
  },
  {
    name: 'several SignedInfo',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64(twoSignedInfo(idp.response())),
  },
  {
    name: 'two KeyInfo in the assertion signature',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64(twoKeyInfo(idp.response())),
  },
  {
    name: 'two KeyInfo in the response signature',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64(twoKeyInfo(idp.response({ signResponse: true }), 'response')),
  },
  {
    name: 'comment inside DigestValue',
    code: 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) => base64(commentInDigestValue(idp.response())),
  },
  {
    name: 'RSA-SHA1 signature',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => {
      const unsigned = idp.response({ signAssertion: false });
      return base64(signElement(unsigned, 'Assertion', idp.keys, { signature: SHA1_SIG }));
    },
  },
  {
    name: 'expired Conditions',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) =>
      base64(idp.response({ assertion: { notBefore: ago(20 * MIN), notOnOrAfter: ago(10 * MIN) } })),
  },
  {
    name: 'Conditions not yet valid',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { notBefore: ahead(10 * MIN) } })),
  },
  {
    name: 'expired SubjectConfirmationData',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { subjectNotOnOrAfter: ago(10 * MIN) } })),
  },
  {
    name: 'SubjectConfirmationData not yet valid',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { subjectNotBefore: ahead(10 * MIN) } })),
  },
  {
    name: 'SubjectConfirmationData without NotOnOrAfter',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { subjectNotOnOrAfter: null } })),
  },
  {
    name: 'IssueInstant in the future',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { issueInstant: ahead(10 * MIN) } })),
  },
  {
    name: 'assertion older than maxAssertionAge',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) =>
      base64(idp.response({ assertion: { issueInstant: ago(60 * MIN), notBefore: ago(61 * MIN) } })),
  },
  {
    name: 'wrong Audience',
    code: 'ERR_SAML_AUDIENCE_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { audience: 'https://other-sp.example' } })),
  },
  {
    name: 'no AudienceRestriction',
    code: 'ERR_SAML_AUDIENCE_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { audience: null } })),
  },
  {
    name: 'wrong Recipient',
    code: 'ERR_SAML_RECIPIENT_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { recipient: 'https://other-sp.example/acs' } })),
  },
  {
    name: 'no Recipient',
    code: 'ERR_SAML_RECIPIENT_INVALID',
    build: ({ idp }) => base64(idp.response({ assertion: { recipient: null } })),
  },
  {
    name: 'wrong Destination',
    code: 'ERR_SAML_DESTINATION_INVALID',
    build: ({ idp }) =>
      base64(idp.response({ destination: 'https://other-sp.example/acs', signResponse: true })),
  },
  {
    name: 'no Destination',
    code: 'ERR_SAML_DESTINATION_INVALID',
    build: ({ idp }) => base64(idp.response({ destination: null })),
  },
  {
    name: 'wrong assertion Issuer (unknown IdP)',
    code: 'ERR_SAML_ISSUER_INVALID',
    build: ({ idp }) =>
      base64(idp.response({ issuer: 'https://evil.example', assertion: { issuer: 'https://evil.example' } })),
  },
  {
    name: 'wrong Response Issuer',
    code: 'ERR_SAML_ISSUER_INVALID',
    build: ({ idp }) => base64(idp.response({ issuer: 'https://evil.example', signResponse: true })),
  },
  {
    name: 'StatusCode Requester around a valid assertion (signed response)',
    code: 'ERR_SAML_STATUS_NOT_SUCCESS',
    build: ({ idp }) => base64(idp.response({ status: STATUS_REQUESTER, signResponse: true })),
  },
  {
    name: 'StatusCode changed to Requester in an unsigned response',
    code: 'ERR_SAML_STATUS_NOT_SUCCESS',
    build: ({ idp }) => base64(withStatus(idp.response(), STATUS_REQUESTER)),
  },
  {
    name: 'error response without assertion',
    code: 'ERR_SAML_STATUS_NOT_SUCCESS',
    build: ({ idp }) =>
      base64(
        idp
          .response({ status: STATUS_REQUESTER, signAssertion: false })
          .replace(/<saml:Assertion[\s\S]*<\/saml:Assertion>/, ''),
      ),
  },
  {
    name: 'encrypted assertion',
    code: 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) =>
      base64(
        idp
          .response({ signAssertion: false })
          .replace(
            /<saml:Assertion[\s\S]*<\/saml:Assertion>/,
            '<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/></saml:EncryptedAssertion>',
          ),
      ),
  },
  {
    name: 'DOCTYPE with an external entity',
    code: 'ERR_SAML_DOCTYPE_FORBIDDEN',
    build: ({ idp }) => base64(externalEntity(idp.response())),
  },
  {
    name: 'entity expansion (billion laughs)',
    code: 'ERR_SAML_DOCTYPE_FORBIDDEN',
    build: ({ idp }) => base64(entityExpansion(idp.response())),
  },
  {
    name: 'oversized message',
    code: 'ERR_SAML_TOO_LARGE',
    build: ({ idp, maxMessageBytes }) =>
      base64(idp.response({ assertion: { attributes: { junk: ['x'.repeat(maxMessageBytes)] } } })),
  },
  { name: 'not base64', code: 'ERR_SAML_MALFORMED', build: () => 'not*base64!' },
  { name: 'not XML', code: 'ERR_SAML_MALFORMED', build: () => base64('hello, world') },
  {
    name: 'a bare assertion instead of a response',
    code: 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) => base64(idp.grantAssertion()),
  },
];

/** RFC 7522 grant (`assertion` at the token endpoint); the IdP is configured with `allowBearerGrant: true`. */
export const GRANT_CASES: readonly SamlCase[] = [
  { name: 'valid assertion', code: undefined, build: ({ idp }) => base64url(idp.grantAssertion()) },
  ...Object.keys(XSW).map((variant): SamlCase => ({
    name: `${variant} on the assertion`,
    // XSW3 and XSW5 on a root assertion need a second root: not well-formed.
    code: variant === 'XSW3' || variant === 'XSW5' ? 'ERR_SAML_MALFORMED' : 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) =>
      base64url((XSW[variant] as (x: string, t: XswTarget) => string)(idp.grantAssertion(), 'assertion')),
  })),
  {
    name: 'comment injected into NameID (truncation)',
    code: 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) =>
      base64url(commentInNameId(idp.grantAssertion({ nameId: 'admin@example.com.evil.example' }))),
  },
  {
    name: 'signature stripped',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64url(stripAssertionSignature(idp.grantAssertion())),
  },
  {
    name: 'NameID changed after signing',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64url(changeNameIdAfterSigning(idp.grantAssertion())),
  },
  {
    name: 'signed with an attacker key carried in KeyInfo',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp, attacker }) => base64url(idp.grantAssertion({}, attacker)),
  },
  {
    name: 'several SignedInfo',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64url(twoSignedInfo(idp.grantAssertion())),
  },
  {
    name: 'two KeyInfo in the signature',
    code: 'ERR_SAML_SIGNATURE_INVALID',
    build: ({ idp }) => base64url(twoKeyInfo(idp.grantAssertion())),
  },
  {
    name: 'comment inside DigestValue',
    code: 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) => base64url(commentInDigestValue(idp.grantAssertion())),
  },
  {
    name: 'two roots',
    code: 'ERR_SAML_MALFORMED',
    build: ({ idp }) => base64url(idp.grantAssertion() + idp.grantAssertion()),
  },
  {
    name: 'expired Conditions',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) =>
      base64url(idp.grantAssertion({ notBefore: ago(20 * MIN), notOnOrAfter: ago(10 * MIN) })),
  },
  {
    name: 'not yet valid',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) => base64url(idp.grantAssertion({ notBefore: ahead(10 * MIN) })),
  },
  {
    name: 'expired SubjectConfirmationData',
    code: 'ERR_SAML_CONDITIONS_INVALID',
    build: ({ idp }) => base64url(idp.grantAssertion({ subjectNotOnOrAfter: ago(10 * MIN) })),
  },
  {
    name: 'wrong Audience (the SP audience, not the token endpoint one)',
    code: 'ERR_SAML_AUDIENCE_INVALID',
    build: ({ idp }) => base64url(idp.grantAssertion({ audience: 'https://other-as.example' })),
  },
  {
    name: 'wrong Recipient (the ACS URL, an SSO assertion)',
    code: 'ERR_SAML_RECIPIENT_INVALID',
    build: ({ idp }) => base64url(idp.grantAssertion({ recipient: idp.target.acsUrl })),
  },
  {
    name: 'wrong Issuer (unknown IdP)',
    code: 'ERR_SAML_ISSUER_INVALID',
    build: ({ idp }) => base64url(idp.grantAssertion({ issuer: 'https://evil.example' })),
  },
  {
    name: 'IdP not allowed for the grant',
    code: 'ERR_SAML_ISSUER_INVALID',
    build: ({ otherIdp }) => base64url(otherIdp.grantAssertion()),
  },
  {
    name: 'assertion answering an AuthnRequest (InResponseTo)',
    code: 'ERR_SAML_IN_RESPONSE_TO_INVALID',
    build: ({ idp }) => base64url(idp.grantAssertion({ inResponseTo: '_abc' })),
  },
  {
    name: 'DOCTYPE with an external entity',
    code: 'ERR_SAML_DOCTYPE_FORBIDDEN',
    build: ({ idp }) => base64url(externalEntity(idp.grantAssertion())),
  },
  {
    name: 'entity expansion (billion laughs)',
    code: 'ERR_SAML_DOCTYPE_FORBIDDEN',
    build: ({ idp }) => base64url(entityExpansion(idp.grantAssertion())),
  },
  {
    name: 'a login response instead of an assertion',
    code: 'ERR_SAML_STRUCTURE_INVALID',
    build: ({ idp }) => base64url(idp.response()),
  },
  { name: 'base64 with padding and + / (not base64url)', code: 'ERR_SAML_MALFORMED', build: () => '+/+/' },
  {
    name: 'oversized assertion',
    code: 'ERR_SAML_TOO_LARGE',
    build: ({ idp, maxMessageBytes }) =>
      base64url(idp.grantAssertion({ attributes: { junk: ['x'.repeat(maxMessageBytes)] } })),
  },
];
