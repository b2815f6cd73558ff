/**
 * Finding: the algorithm allow-list (`saml-structure.ts`: RSA-SHA256/512, exclusive c14n) is read
 * from the `SignedInfo` children, but xml-crypto picks `CanonicalizationMethod`, `SignatureMethod`
 * and `SignatureValue` as the *first descendant of the Signature with that local name*, in any
 * namespace. The structure check allowed `KeyInfo` (unsigned) before `SignedInfo`, so a decoy
 * `<ds:SignatureMethod>` inside it chose the algorithm xml-crypto verified with: an RSA-SHA1
 * signature was accepted although SHA-1 is refused (README: "algorithm not accepted (SHA-1 ...)").
 *
 * Exploiting it needs an IdP signature made with a weaker algorithm than its `SignedInfo` names,
 * so it is a hole in a defence, not a forgery. The test plays the IdP (its key) to make one.
 * XML-DSig §4.1 fixes the order: SignedInfo, SignatureValue, KeyInfo?, Object*.
 */
import { createSign, type BinaryLike, type KeyLike } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOMParser, XMLSerializer, type Element } from '@xmldom/xmldom';
import { SignedXml, type SignatureAlgorithm } from 'xml-crypto';
import type { TestApp } from '../../support/harness.js';
import { base64, signElement } from '../../saml/support/test-idp.js';
import {
  createAttackContext,
  outcome,
  postAcs,
  samlOptions,
  startSamlApp,
  type AttackContext,
} from './saml-attack-fixture.js';

const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';

let ctx: AttackContext;
let app: TestApp;

beforeAll(async () => {
  ctx = await createAttackContext();
  app = await startSamlApp(ctx, samlOptions(ctx, { allowIdpInitiated: true }));
});

afterAll(async () => {
  await app?.close();
});

/** Names RSA-SHA256 in `SignedInfo` but signs with RSA-SHA1. */
class Sha1UnderSha256Name {
  getSignature(signedInfo: BinaryLike, privateKey: KeyLike): string {
    return createSign('RSA-SHA1').update(signedInfo).sign(privateKey, 'base64');
  }
  verifySignature(): boolean {
    return false;
  }
  getAlgorithmName(): string {
    return RSA_SHA256;
  }
}

/** The assertion signed as the IdP would, except that the signature value is RSA-SHA1. */
function sha1SignedResponse(): string {
  const unsigned = ctx.idp.response({ signAssertion: false });
  const sig = new SignedXml({
    privateKey: ctx.idp.keys.keyPem,
    publicCert: ctx.idp.keys.certPem,
    signatureAlgorithm: RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
  (sig.SignatureAlgorithms as Record<string, new () => SignatureAlgorithm>)[RSA_SHA256] =
    Sha1UnderSha256Name as unknown as new () => SignatureAlgorithm;
  const path = `/*/*[local-name(.)='Assertion']`;
  sig.addReference({
    xpath: path,
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: [`${DSIG}enveloped-signature`, EXC_C14N],
  });
  sig.computeSignature(unsigned, {
    prefix: 'ds',
    location: { reference: `(${path})/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return sig.getSignedXml();
}

/** Moves the assertion signature's KeyInfo first, optionally holding a decoy element. */
function keyInfoFirst(xml: string, decoy?: { localName: string; algorithm: string }): string {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const signature = doc.getElementsByTagNameNS(DSIG, 'Signature').item(0) as Element;
  const keyInfo = signature.getElementsByTagNameNS(DSIG, 'KeyInfo').item(0) as Element;
  if (decoy !== undefined) {
    const el = doc.createElementNS(DSIG, `ds:${decoy.localName}`);
    el.setAttribute('Algorithm', decoy.algorithm);
    keyInfo.insertBefore(el, keyInfo.firstChild);
  }
  signature.removeChild(keyInfo);
  signature.insertBefore(keyInfo, signature.firstChild);
  return new XMLSerializer().serializeToString(doc);
}

describe('the algorithms xml-crypto uses are the ones the allow-list checked', () => {
  it('control: an RSA-SHA1 signature under a SignedInfo naming RSA-SHA256 is refused', async () => {
    expect(outcome(await postAcs(app, base64(sha1SignedResponse())))).toEqual({
      status: 401,
      code: 'ERR_SAML_SIGNATURE_INVALID',
    });
  });

  it('refuses it when a decoy SignatureMethod (rsa-sha1) sits in a KeyInfo placed first', async () => {
    const forged = keyInfoFirst(sha1SignedResponse(), { localName: 'SignatureMethod', algorithm: RSA_SHA1 });
    expect(outcome(await postAcs(app, base64(forged)))).toEqual({
      status: 401,
      code: 'ERR_SAML_SIGNATURE_INVALID',
    });
  });

  it('refuses Signature children out of the XML-DSig order, even around a good signature', async () => {
    const good = signElement(ctx.idp.response({ signAssertion: false }), 'Assertion', ctx.idp.keys);
    expect(outcome(await postAcs(app, base64(good)))).toEqual({ status: 200, code: 'accepted' });
    const reordered = keyInfoFirst(
      signElement(ctx.idp.response({ signAssertion: false }), 'Assertion', ctx.idp.keys),
    );
    expect(outcome(await postAcs(app, base64(reordered)))).toEqual({
      status: 401,
      code: 'ERR_SAML_SIGNATURE_INVALID',
    });
  });
});
