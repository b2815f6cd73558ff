/**
 * A real SAML identity provider for tests: RSA signing keys, SAML 2.0 responses and assertions
 * built as an IdP builds them and signed with xml-crypto (enveloped, exclusive c14n, RSA-SHA256),
 * as ADFS, Okta, Entra ID and Shibboleth do.
 *
 * Why not the dev PKI for the signing key: `@inference-shield/dev-pki` issues ECDSA P-256 keys, and
 * xml-crypto (hence node-saml) verifies RSA XML signatures only. Every real SAML IdP signs with
 * RSA; their signing certificates are usually self-signed and pinned, as here.
 */
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SignedXml } from 'xml-crypto';

x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>);

export const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
export const STATUS_REQUESTER = 'urn:oasis:names:tc:SAML:2.0:status:Requester';

/** An RSA signing key and its self-signed certificate. */
export interface SigningIdentity {
  readonly certPem: string;
  readonly keyPem: string;
}

const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]) };

/** A self-signed RSA signing certificate, as SAML IdPs publish in their metadata. */
export async function createSigningIdentity(
  opts: { commonName?: string; bits?: number; notBefore?: Date; notAfter?: Date } = {},
): Promise<SigningIdentity> {
  const alg = { ...RSA, modulusLength: opts.bits ?? 2048 };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${opts.commonName ?? 'Test SAML IdP'}`,
    notBefore: opts.notBefore ?? new Date(Date.now() - 3_600_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 30 * 86_400_000),
    keys,
    signingAlgorithm: alg,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
  return { certPem: cert.toString('pem'), keyPem };
}

/** What a test assertion holds; `null` removes an element or attribute. */
export interface AssertionSpec {
  id?: string;
  issuer?: string;
  nameId?: string;
  nameIdFormat?: string;
  issueInstant?: Date;
  audience?: string | null;
  recipient?: string | null;
  inResponseTo?: string;
  notBefore?: Date | null;
  notOnOrAfter?: Date | null;
  subjectNotBefore?: Date;
  subjectNotOnOrAfter?: Date | null;
  sessionNotOnOrAfter?: Date;
  attributes?: Record<string, string[]>;
}

/** What a test response holds; `null` removes an element or attribute. */
export interface ResponseSpec {
  id?: string;
  issuer?: string | null;
  destination?: string | null;
  inResponseTo?: string;
  status?: string;
  /** Signs the assertion (default true). */
  signAssertion?: boolean;
  /** Signs the response, after the assertion (default false). */
  signResponse?: boolean;
  /** Signs with this key instead of the IdP's (attacker key, its certificate in KeyInfo). */
  signWith?: SigningIdentity;
  assertion?: AssertionSpec;
}

export function newId(): string {
  return `_${randomBytes(16).toString('hex')}`;
}

function esc(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function attr(name: string, value: string | Date | null | undefined): string {
  if (value === null || value === undefined) return '';
  return ` ${name}="${esc(value instanceof Date ? value.toISOString() : value)}"`;
}

/** Where the IdP sends responses, and to whom assertions are addressed. */
export interface TestIdpTarget {
  readonly acsUrl: string;
  readonly audience: string;
  readonly tokenEndpointUrl: string;
  readonly grantAudience: string;
}

/** A SAML IdP that signs what tests ask for. */
export class TestIdp {
  constructor(
    readonly entityId: string,
    readonly keys: SigningIdentity,
    readonly target: TestIdpTarget,
  ) {}

  /** The unsigned assertion XML. */
  assertionXml(spec: AssertionSpec = {}, way: 'acs' | 'grant' = 'acs'): string {
    const now = Date.now();
    const id = spec.id ?? newId();
    const notOnOrAfter = spec.notOnOrAfter === undefined ? new Date(now + 300_000) : spec.notOnOrAfter;
    const subjectNotOnOrAfter =
      spec.subjectNotOnOrAfter === undefined ? new Date(now + 300_000) : spec.subjectNotOnOrAfter;
    const recipient =
      spec.recipient === undefined
        ? way === 'acs'
          ? this.target.acsUrl
          : this.target.tokenEndpointUrl
        : spec.recipient;
    const audience =
      spec.audience === undefined
        ? way === 'acs'
          ? this.target.audience
          : this.target.grantAudience
        : spec.audience;
    const notBefore = spec.notBefore === undefined ? new Date(now - 60_000) : spec.notBefore;
    const attributes = Object.entries(spec.attributes ?? { groups: ['model-users'] })
      .map(
        ([name, values]) =>
          `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">` +
          values.map((v) => `<saml:AttributeValue>${esc(v)}</saml:AttributeValue>`).join('') +
          `</saml:Attribute>`,
      )
      .join('');
    return (
      `<saml:Assertion xmlns:saml="${NS_ASSERTION}" ID="${id}" Version="2.0"${attr('IssueInstant', spec.issueInstant ?? new Date(now))}>` +
      `<saml:Issuer>${esc(spec.issuer ?? this.entityId)}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="${esc(spec.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress')}">${esc(spec.nameId ?? 'alice@example.com')}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData` +
      attr('InResponseTo', spec.inResponseTo) +
      attr('NotBefore', spec.subjectNotBefore) +
      attr('NotOnOrAfter', subjectNotOnOrAfter) +
      attr('Recipient', recipient) +
      `/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions${attr('NotBefore', notBefore)}${attr('NotOnOrAfter', notOnOrAfter)}>` +
      (audience === null
        ? ''
        : `<saml:AudienceRestriction><saml:Audience>${esc(audience)}</saml:Audience></saml:AudienceRestriction>`) +
      `</saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${new Date(now - 1000).toISOString()}" SessionIndex="${newId()}"${attr('SessionNotOnOrAfter', spec.sessionNotOnOrAfter)}>` +
      `<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      (attributes === '' ? '' : `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>`) +
      `</saml:Assertion>`
    );
  }

  /** A login response for the ACS, signed as the spec says (assertion signed by default). */
  response(spec: ResponseSpec = {}): string {
    const assertion = this.assertionXml({ inResponseTo: spec.inResponseTo, ...spec.assertion });
    const id = spec.id ?? newId();
    const issuer = spec.issuer === undefined ? this.entityId : spec.issuer;
    const destination = spec.destination === undefined ? this.target.acsUrl : spec.destination;
    let xml =
      `<samlp:Response xmlns:samlp="${NS_PROTOCOL}" ID="${id}" Version="2.0" IssueInstant="${new Date().toISOString()}"` +
      attr('Destination', destination) +
      attr('InResponseTo', spec.inResponseTo) +
      `>` +
      (issuer === null ? '' : `<saml:Issuer xmlns:saml="${NS_ASSERTION}">${esc(issuer)}</saml:Issuer>`) +
      `<samlp:Status><samlp:StatusCode Value="${esc(spec.status ?? STATUS_SUCCESS)}"/></samlp:Status>` +
      assertion +
      `</samlp:Response>`;
    const keys = spec.signWith ?? this.keys;
    if (spec.signAssertion !== false) xml = signElement(xml, 'Assertion', keys);
    if (spec.signResponse === true) xml = signElement(xml, 'Response', keys);
    return xml;
  }

  /** A signed bare assertion for the RFC 7522 grant (Recipient = token endpoint). */
  grantAssertion(spec: AssertionSpec = {}, signWith?: SigningIdentity): string {
    return signElement(this.assertionXml(spec, 'grant'), 'Assertion', signWith ?? this.keys);
  }
}

/**
 * Signs the (single) element with that local name, enveloped, right after its `Issuer` (where
 * the SAML schema puts the signature), with the certificate in `KeyInfo` as IdPs do.
 */
export function signElement(
  xml: string,
  localName: 'Assertion' | 'Response',
  keys: SigningIdentity,
  algorithms: { signature?: string; digest?: string } = {},
): string {
  const sig = new SignedXml({
    privateKey: keys.keyPem,
    publicCert: keys.certPem,
    signatureAlgorithm: algorithms.signature ?? 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  const path = `/*[local-name(.)='${localName}'] | /*/*[local-name(.)='${localName}']`;
  sig.addReference({
    xpath: path,
    digestAlgorithm: algorithms.digest ?? 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: [
      'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
      'http://www.w3.org/2001/10/xml-exc-c14n#',
    ],
  });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `(${path})/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return sig.getSignedXml();
}

export const base64 = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64');
export const base64url = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64url');
