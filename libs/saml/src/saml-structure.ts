import { DOMParser, onWarningStopParsing, type Document, type Element, type Node } from '@xmldom/xmldom';
import { ShieldError } from '@inference-shield/core/internal';
import {
  ACCEPTED_DIGEST_ALGORITHMS,
  ACCEPTED_SIGNATURE_ALGORITHMS,
  C14N_EXCLUSIVE,
  SAML_ASSERTION_NS,
  SAML_PROTOCOL_NS,
  STATUS_SUCCESS,
  TRANSFORM_ENVELOPED,
  XMLDSIG_NS,
} from './saml.constants.js';

/** Which message a structure check expects: a login `Response`, or a bare `Assertion` (RFC 7522). */
export type SamlMessageKind = 'response' | 'assertion';

/**
 * What the structure check read from the raw, *unverified* message. Only used to pick the IdP
 * (by `assertionIssuer`) and to cross-check the values read from the verified assertion; never
 * trusted on its own.
 */
export interface SamlMessageFacts {
  readonly kind: SamlMessageKind;
  /** The decoded XML text, exactly as checked (node-saml is given these same characters). */
  readonly xml: string;
  readonly assertionId: string;
  readonly assertionIssuer: string;
  /** The NameID text of the raw message. */
  readonly nameId: string;
  readonly responseId: string | undefined;
  readonly responseIssuer: string | undefined;
  /** The response carries its own signature (which must then verify). */
  readonly responseSigned: boolean;
  readonly destination: string | undefined;
  readonly inResponseTo: string | undefined;
  /** The top-level `StatusCode` value of a response. */
  readonly statusCode: string | undefined;
  /** The parsed document, for reading the status once the signature is verified. */
  readonly document: Document;
}

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const PROCESSING_INSTRUCTION_NODE = 7;
/** Real SAML responses nest about 8 deep; deep nesting only serves to exhaust recursive code downstream. */
const MAX_DEPTH = 40;
const MAX_ID_LENGTH = 256;
const MAX_NAMEID_LENGTH = 1024;
const ID_ATTRIBUTES = new Set(['ID', 'Id', 'id']);
/** Base64 text of XML-DSig: whitespace anywhere before the (at most two) `=` of padding. */
const BASE64_BODY = /^[A-Za-z0-9+/\s]+$/;
const BASE64_CHAR = /[A-Za-z0-9+/]/;
const ENCRYPTED = new Set([
  'EncryptedAssertion',
  'EncryptedID',
  'EncryptedAttribute',
  'EncryptedData',
  'EncryptedKey',
]);

function refuse(code: ConstructorParameters<typeof ShieldError>[0], detail: string): never {
  throw new ShieldError(code, { detail });
}

/**
 * Decodes a base64 (HTTP-POST binding) or base64url (RFC 7522 §2.1) SAML message into XML text,
 * refusing an oversized input before decoding it and anything that is not strict base64 or
 * well-formed UTF-8.
 */
export function decodeSamlMessage(
  value: unknown,
  maxBytes: number,
  encoding: 'base64' | 'base64url',
): string {
  if (typeof value !== 'string' || value.length === 0)
    refuse('ERR_SAML_MALFORMED', 'missing or empty message');
  const maxEncoded = Math.ceil(maxBytes / 3) * 4;
  // Line breaks are tolerated in the POST binding (some IdPs wrap at 64 or 76 characters).
  if (value.length > maxEncoded + Math.ceil(maxEncoded / 64) * 2)
    refuse('ERR_SAML_TOO_LARGE', 'encoded message too large');
  let compact: string;
  if (encoding === 'base64') {
    compact = value.replace(/[\r\n\t ]/g, '');
    if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
      refuse('ERR_SAML_MALFORMED', 'not base64');
    }
  } else {
    // RFC 7522 §2.1: base64url, not line wrapped, padding optional.
    compact = value;
    const body = compact.replace(/={1,2}$/, '');
    if (
      !/^[A-Za-z0-9_-]*$/.test(body) ||
      body.length % 4 === 1 ||
      (compact !== body && compact.length % 4 !== 0)
    ) {
      refuse('ERR_SAML_MALFORMED', 'not base64url');
    }
  }
  if (compact.length > maxEncoded) refuse('ERR_SAML_TOO_LARGE', 'encoded message too large');
  const bytes = Buffer.from(compact, encoding);
  if (bytes.length > maxBytes) refuse('ERR_SAML_TOO_LARGE', 'decoded message too large');
  try {
    // ignoreBOM false: a UTF-8 BOM is dropped, the text node-saml sees is this same string.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return refuse('ERR_SAML_MALFORMED', 'not UTF-8');
  }
}

/**
 * Checks a SAML message before any signature work: markup that has no place in SAML refused on
 * the raw text, then one parse and a walk of the tree that closes signature wrapping (XSW):
 * exactly one assertion, signatures only where they belong and referencing their parent, unique
 * IDs, accepted algorithms only.
 */
export function inspectSamlXml(xml: string, kind: SamlMessageKind): SamlMessageFacts {
  scanMarkup(xml);
  const document = parse(xml);
  const root = document.documentElement;
  if (root === null) return refuse('ERR_SAML_MALFORMED', 'no root element');

  const seen = walk(document);
  if (kind === 'response') {
    if (root.localName !== 'Response' || root.namespaceURI !== SAML_PROTOCOL_NS) {
      refuse('ERR_SAML_STRUCTURE_INVALID', 'root is not samlp:Response');
    }
  } else if (root.localName !== 'Assertion' || root.namespaceURI !== SAML_ASSERTION_NS) {
    refuse('ERR_SAML_STRUCTURE_INVALID', 'root is not saml:Assertion');
  }
  if (seen.responses.length !== (kind === 'response' ? 1 : 0)) {
    refuse('ERR_SAML_STRUCTURE_INVALID', 'unexpected Response elements');
  }

  let statusCode: string | undefined;
  if (kind === 'response') {
    const status = onlyChild(root, SAML_PROTOCOL_NS, 'Status', 'Status');
    statusCode =
      onlyChild(status, SAML_PROTOCOL_NS, 'StatusCode', 'StatusCode').getAttribute('Value') ?? undefined;
    // An error response carries no assertion: report the IdP's refusal rather than a missing assertion.
    if (seen.assertions.length === 0 && statusCode !== undefined) {
      if (statusCode !== STATUS_SUCCESS) {
        refuse('ERR_SAML_STATUS_NOT_SUCCESS', 'IdP returned an error status');
      }
    }
  }

  // XSW always leaves a second copy of the signed element somewhere: one Assertion, no more.
  if (seen.assertions.length !== 1) refuse('ERR_SAML_STRUCTURE_INVALID', 'not exactly one Assertion');
  const assertion = seen.assertions[0] as Element;
  if (assertion.namespaceURI !== SAML_ASSERTION_NS)
    refuse('ERR_SAML_STRUCTURE_INVALID', 'Assertion namespace');
  if (kind === 'response' ? assertion.parentNode !== root : assertion !== root) {
    refuse('ERR_SAML_STRUCTURE_INVALID', 'Assertion is not where SAML puts it');
  }
  if (assertion.getAttribute('Version') !== '2.0') refuse('ERR_SAML_STRUCTURE_INVALID', 'Assertion Version');
  const assertionId = requireId(assertion);

  // Signatures: only as a direct child of the Response or of the Assertion, at most one each.
  let responseSigned = false;
  let assertionSigned = false;
  for (const sig of seen.signatures) {
    if (sig.parentNode === assertion) {
      if (assertionSigned) refuse('ERR_SAML_SIGNATURE_INVALID', 'two signatures on the Assertion');
      assertionSigned = true;
      checkSignature(sig, assertion);
    } else if (kind === 'response' && sig.parentNode === root) {
      if (responseSigned) refuse('ERR_SAML_SIGNATURE_INVALID', 'two signatures on the Response');
      responseSigned = true;
      checkSignature(sig, root);
    } else {
      refuse('ERR_SAML_STRUCTURE_INVALID', 'Signature in an unexpected place');
    }
  }
  // The assertion itself must always be signed: a signed response around an unsigned assertion is refused.
  if (!assertionSigned) refuse('ERR_SAML_SIGNATURE_INVALID', 'Assertion is not signed');

  const assertionIssuer = textOnly(onlyChild(assertion, SAML_ASSERTION_NS, 'Issuer', 'Assertion Issuer'));
  if (assertionIssuer.length === 0) refuse('ERR_SAML_ISSUER_INVALID', 'empty Issuer');
  const subject = onlyChild(assertion, SAML_ASSERTION_NS, 'Subject', 'Subject');
  const nameId = textOnly(onlyChild(subject, SAML_ASSERTION_NS, 'NameID', 'NameID'));
  if (nameId.trim().length === 0 || nameId.length > MAX_NAMEID_LENGTH) {
    refuse('ERR_SAML_STRUCTURE_INVALID', 'NameID empty or too long');
  }

  let responseId: string | undefined;
  let responseIssuer: string | undefined;
  let destination: string | undefined;
  let inResponseTo: string | undefined;
  if (kind === 'response') {
    if (root.getAttribute('Version') !== '2.0') refuse('ERR_SAML_STRUCTURE_INVALID', 'Response Version');
    responseId = requireId(root);
    const issuers = childElements(root, SAML_ASSERTION_NS, 'Issuer');
    if (issuers.length > 1) refuse('ERR_SAML_STRUCTURE_INVALID', 'two Response Issuers');
    if (issuers[0] !== undefined) responseIssuer = textOnly(issuers[0]);
    destination = root.getAttribute('Destination') ?? undefined;
    inResponseTo = root.getAttribute('InResponseTo') ?? undefined;
  }

  return {
    kind,
    xml,
    assertionId,
    assertionIssuer,
    nameId,
    responseId,
    responseIssuer,
    responseSigned,
    destination,
    inResponseTo,
    statusCode,
    document,
  };
}

/**
 * Markup SAML never needs is refused on the raw text, before any parser sees it: a DOCTYPE or
 * entity declaration (XXE, billion laughs), comments (the NameID truncation and DigestValue
 * comment attacks, CVE-2017-11427 and CVE-2025-29775), CDATA and processing instructions (parser
 * differentials). In well-formed XML a literal `<!` or `<?` is always markup, never text.
 */
function scanMarkup(xml: string): void {
  if (xml.includes('\u0000')) refuse('ERR_SAML_MALFORMED', 'NUL character');
  if (/<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i.test(xml)) {
    refuse('ERR_SAML_DOCTYPE_FORBIDDEN', 'DOCTYPE or entity declaration');
  }
  if (xml.includes('<!--')) refuse('ERR_SAML_STRUCTURE_INVALID', 'comment');
  if (xml.includes('<!')) refuse('ERR_SAML_STRUCTURE_INVALID', 'CDATA section or declaration');
  const decl = /^\s*<\?xml\s[^?]*\?>/.exec(xml);
  const rest = decl === null ? xml : xml.slice(decl[0].length);
  if (rest.includes('<?')) refuse('ERR_SAML_STRUCTURE_INVALID', 'processing instruction');
  if (/&(?!(lt|gt|amp|quot|apos|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});)/.test(xml)) {
    // Only the five predefined entities and character references exist without a DTD.
    refuse('ERR_SAML_MALFORMED', 'undefined entity reference');
  }
}

function parse(xml: string): Document {
  try {
    // Any warning or error stops the parse: a lenient parser repairs documents into something
    // other than what was signed.
    return new DOMParser({ onError: onWarningStopParsing }).parseFromString(xml, 'text/xml');
  } catch {
    return refuse('ERR_SAML_MALFORMED', 'not well-formed XML');
  }
}

interface Seen {
  readonly responses: Element[];
  readonly assertions: Element[];
  readonly signatures: Element[];
}

/** One iterative pass over every node: counts, unique IDs, depth, node kinds. */
function walk(document: Document): Seen {
  const seen: Seen = { responses: [], assertions: [], signatures: [] };
  const ids = new Set<string>();
  const stack: Array<{ node: Node; depth: number }> = [];
  for (let c = document.firstChild; c !== null; c = c.nextSibling) {
    // The XML declaration is kept as a node; the raw-text scan allowed it at the very start only.
    if (c.nodeType === PROCESSING_INSTRUCTION_NODE && c.nodeName === 'xml' && c === document.firstChild)
      continue;
    // XML 1.0 §2.8 allows white space around the root (`<?xml ...?>` then a line break, as
    // pretty-printing IdPs send); anything else outside it is refused.
    if (c.nodeType === TEXT_NODE && /^[ \t\r\n]*$/.test(c.nodeValue ?? '')) continue;
    if (c.nodeType !== ELEMENT_NODE) refuse('ERR_SAML_STRUCTURE_INVALID', 'node outside the root element');
    stack.push({ node: c, depth: 1 });
  }
  while (stack.length > 0) {
    const { node, depth } = stack.pop() as { node: Node; depth: number };
    if (node.nodeType === TEXT_NODE) continue;
    if (node.nodeType !== ELEMENT_NODE) refuse('ERR_SAML_STRUCTURE_INVALID', 'unexpected node kind');
    if (depth > MAX_DEPTH) refuse('ERR_SAML_STRUCTURE_INVALID', 'nested too deep');
    const el = node as Element;
    const name = el.localName ?? '';
    if (name === 'Response') seen.responses.push(el);
    else if (name === 'Assertion') seen.assertions.push(el);
    else if (ENCRYPTED.has(name)) refuse('ERR_SAML_STRUCTURE_INVALID', 'encrypted content is not supported');
    if (el.namespaceURI === XMLDSIG_NS) {
      if (name === 'Signature') seen.signatures.push(el);
      // ds:Object and ds:Manifest are where XSW variants hide the original signed element.
      else if (name === 'Object' || name === 'Manifest') refuse('ERR_SAML_STRUCTURE_INVALID', `ds:${name}`);
    }
    // xml-crypto resolves a Reference through any of ID, Id or id: all must be unique together,
    // or one signed element and one forged element share the referenced ID (the essence of XSW).
    for (let i = 0; i < el.attributes.length; i++) {
      const attr = el.attributes.item(i);
      if (attr === null || !ID_ATTRIBUTES.has(attr.localName ?? attr.name)) continue;
      if (ids.has(attr.value)) refuse('ERR_SAML_STRUCTURE_INVALID', 'duplicate ID');
      ids.add(attr.value);
    }
    for (let c = el.firstChild; c !== null; c = c.nextSibling) stack.push({ node: c, depth: depth + 1 });
  }
  return seen;
}

/** XML-DSig checks on one enveloped signature (the cryptography is node-saml's, then xml-crypto's). */
function checkSignature(sig: Element, parent: Element): void {
  const parentId = requireId(parent);
  // "Several SignedInfo": exactly one anywhere inside the signature (a copy nested in KeyInfo
  // passes the child order below), and that one its first child.
  if (sig.getElementsByTagNameNS(XMLDSIG_NS, 'SignedInfo').length !== 1) {
    refuse('ERR_SAML_SIGNATURE_INVALID', 'not exactly one SignedInfo');
  }
  // XML-DSig §4.1 order: SignedInfo, SignatureValue, then at most one KeyInfo (ds:Object is
  // refused above); this also refuses a second SignedInfo, SignatureValue or KeyInfo.
  // xml-crypto reads CanonicalizationMethod, SignatureMethod and SignatureValue as the *first
  // descendant* of the Signature with that local name, in any namespace: with the unsigned KeyInfo
  // first, a decoy in it chose the algorithm xml-crypto verified with, past the allow-list below
  // (an RSA-SHA1 signature was accepted). In this order the first match is inside SignedInfo.
  const [signedInfo, signatureValueEl, keyInfo, ...extra] = elementChildren(sig);
  if (
    !isDsig(signedInfo, 'SignedInfo') ||
    !isDsig(signatureValueEl, 'SignatureValue') ||
    (keyInfo !== undefined && !isDsig(keyInfo, 'KeyInfo')) ||
    extra.length > 0
  ) {
    refuse('ERR_SAML_SIGNATURE_INVALID', 'unexpected element in Signature, or out of order');
  }
  const signatureValue = textOnly(signatureValueEl, 'ERR_SAML_SIGNATURE_INVALID');
  if (!isBase64Text(signatureValue)) refuse('ERR_SAML_SIGNATURE_INVALID', 'SignatureValue not base64');

  const c14n = onlyChild(
    signedInfo,
    XMLDSIG_NS,
    'CanonicalizationMethod',
    'c14n',
    'ERR_SAML_SIGNATURE_INVALID',
  );
  if (c14n.getAttribute('Algorithm') !== C14N_EXCLUSIVE)
    refuse('ERR_SAML_SIGNATURE_INVALID', 'c14n algorithm');
  const method = onlyChild(
    signedInfo,
    XMLDSIG_NS,
    'SignatureMethod',
    'SignatureMethod',
    'ERR_SAML_SIGNATURE_INVALID',
  );
  if (!ACCEPTED_SIGNATURE_ALGORITHMS.has(method.getAttribute('Algorithm') ?? '')) {
    refuse('ERR_SAML_SIGNATURE_INVALID', 'signature algorithm not accepted');
  }
  if (signedInfo.getElementsByTagNameNS(XMLDSIG_NS, 'Reference').length !== 1) {
    refuse('ERR_SAML_SIGNATURE_INVALID', 'not exactly one Reference');
  }
  const reference = onlyChild(signedInfo, XMLDSIG_NS, 'Reference', 'Reference', 'ERR_SAML_SIGNATURE_INVALID');
  // The signature must cover the element that carries it, by that element's own ID.
  if (reference.getAttribute('URI') !== `#${parentId}`) {
    refuse('ERR_SAML_SIGNATURE_INVALID', 'Reference does not point at the signed element');
  }
  const transformsEl = childElements(reference, XMLDSIG_NS, 'Transforms');
  if (transformsEl.length !== 1) refuse('ERR_SAML_SIGNATURE_INVALID', 'Transforms');
  const transforms = childElements(transformsEl[0] as Element, XMLDSIG_NS, 'Transform');
  const algorithms = transforms.map((t) => t.getAttribute('Algorithm') ?? '');
  if (
    transforms.length === 0 ||
    transforms.length > 2 ||
    elementChildren(transformsEl[0] as Element).length !== transforms.length ||
    !algorithms.includes(TRANSFORM_ENVELOPED) ||
    algorithms.some((a) => a !== TRANSFORM_ENVELOPED && a !== C14N_EXCLUSIVE)
  ) {
    refuse('ERR_SAML_SIGNATURE_INVALID', 'transforms not accepted');
  }
  const digestMethod = onlyChild(
    reference,
    XMLDSIG_NS,
    'DigestMethod',
    'DigestMethod',
    'ERR_SAML_SIGNATURE_INVALID',
  );
  if (!ACCEPTED_DIGEST_ALGORITHMS.has(digestMethod.getAttribute('Algorithm') ?? '')) {
    refuse('ERR_SAML_SIGNATURE_INVALID', 'digest algorithm not accepted');
  }
  const digest = textOnly(
    onlyChild(reference, XMLDSIG_NS, 'DigestValue', 'DigestValue', 'ERR_SAML_SIGNATURE_INVALID'),
    'ERR_SAML_SIGNATURE_INVALID',
  );
  if (!isBase64Text(digest)) refuse('ERR_SAML_SIGNATURE_INVALID', 'DigestValue not base64');
}

/**
 * Base64 text as XML-DSig carries it, checked in linear time. The single regex it replaces,
 * `^[A-Za-z0-9+/\s]+={0,2}\s*$`, backtracked quadratically on a long run of whitespace followed
 * by any other character: 200 000 spaces in an unsigned message held the event loop for about
 * 40 s, before any signature work (ReDoS). Same language, except that all-whitespace is refused.
 */
function isBase64Text(text: string): boolean {
  const trimmed = text.trimEnd();
  let end = trimmed.length;
  while (end > 0 && trimmed.length - end < 2 && trimmed[end - 1] === '=') end--;
  const body = trimmed.slice(0, end);
  return BASE64_BODY.test(body) && BASE64_CHAR.test(body);
}

function requireId(el: Element): string {
  const id = el.getAttribute('ID');
  // xs:ID is an NCName: no quotes, no spaces (node-saml builds XPath from it).
  if (id === null || id.length === 0 || id.length > MAX_ID_LENGTH || !/^[A-Za-z_][\w.-]*$/.test(id)) {
    return refuse('ERR_SAML_STRUCTURE_INVALID', 'missing or invalid ID');
  }
  return id;
}

function elementChildren(el: Element): Element[] {
  const out: Element[] = [];
  for (let c = el.firstChild; c !== null; c = c.nextSibling) {
    if (c.nodeType === ELEMENT_NODE) out.push(c as Element);
  }
  return out;
}

function isDsig(el: Element | undefined, localName: string): el is Element {
  return el !== undefined && el.namespaceURI === XMLDSIG_NS && el.localName === localName;
}

function childElements(el: Element, ns: string, localName: string): Element[] {
  return elementChildren(el).filter((c) => c.namespaceURI === ns && c.localName === localName);
}

function onlyChild(
  el: Element,
  ns: string,
  localName: string,
  what: string,
  code: 'ERR_SAML_STRUCTURE_INVALID' | 'ERR_SAML_SIGNATURE_INVALID' = 'ERR_SAML_STRUCTURE_INVALID',
): Element {
  const found = childElements(el, ns, localName);
  if (found.length !== 1) refuse(code, `not exactly one ${what}`);
  return found[0] as Element;
}

/** The text of an element that must hold text only: an element or any other node inside is refused. */
export function textOnly(
  el: Element,
  code: 'ERR_SAML_STRUCTURE_INVALID' | 'ERR_SAML_SIGNATURE_INVALID' = 'ERR_SAML_STRUCTURE_INVALID',
): string {
  let text = '';
  for (let c = el.firstChild; c !== null; c = c.nextSibling) {
    if (c.nodeType !== TEXT_NODE) refuse(code, `${el.localName ?? 'element'} holds more than text`);
    text += c.nodeValue ?? '';
  }
  return text;
}

/** Direct element children of `el` with that namespace and local name (exported for the verified reads). */
export function childrenNamed(el: Element, ns: string, localName: string): Element[] {
  return childElements(el, ns, localName);
}
