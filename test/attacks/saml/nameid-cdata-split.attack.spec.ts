/**
 * Coverage (docs/threat-model.md, SAML: "comment injected into NameID to truncate it → the full NameID, or
 * refused"). The suite tests the comment form only. An empty CDATA section does the same job and
 * is subtler: exclusive c14n turns `admin@example.com<![CDATA[]]>.evil.example` into the very text
 * that was signed, so the IdP signature still verifies (checked below with xml-crypto alone),
 * while a reader that takes the first text node gets `admin@example.com`. Not a bug here: it is
 * refused before any signature work. These tests keep it that way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import type { TestApp } from '../../support/harness.js';
import { base64, base64url } from '../../saml/support/test-idp.js';
import {
  createAttackContext,
  outcome,
  postAcs,
  postGrant,
  samlOptions,
  startSamlApp,
  type AttackContext,
} from './saml-attack-fixture.js';

const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const REGISTERED = 'admin@example.com.evil.example';

let ctx: AttackContext;
let app: TestApp;

beforeAll(async () => {
  ctx = await createAttackContext();
  app = await startSamlApp(ctx, samlOptions(ctx, { allowIdpInitiated: true }));
});

afterAll(async () => {
  await app?.close();
});

/** Splits the signed NameID text with an empty CDATA section, after signing. */
function splitNameId(xml: string): string {
  const split = xml.replace(`>${REGISTERED}<`, '>admin@example.com<![CDATA[]]>.evil.example<');
  expect(split).not.toBe(xml);
  return split;
}

/** xml-crypto's own verdict on the assertion signature, with the pinned certificate. */
function xmlCryptoVerifies(xml: string): boolean {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const sig = new SignedXml({ publicCert: ctx.idp.keys.certPem });
  const signature = doc.getElementsByTagNameNS(DSIG, 'Signature').item(0);
  if (signature === null) throw new Error('not signed');
  sig.loadSignature(new XMLSerializer().serializeToString(signature));
  return sig.checkSignature(xml);
}

describe('NameID split by CDATA after signing (truncation)', () => {
  it('the split message still carries a valid IdP signature (the attack is real)', () => {
    expect(xmlCryptoVerifies(splitNameId(ctx.idp.response({ assertion: { nameId: REGISTERED } })))).toBe(
      true,
    );
  });

  it('ACS: refused, never read as the truncated NameID', async () => {
    const forged = splitNameId(ctx.idp.response({ assertion: { nameId: REGISTERED } }));
    expect(outcome(await postAcs(app, base64(forged)))).toEqual({
      status: 401,
      code: 'ERR_SAML_STRUCTURE_INVALID',
    });
  });

  it('RFC 7522 grant: refused with invalid_grant', async () => {
    const forged = splitNameId(ctx.idp.grantAssertion({ nameId: REGISTERED }));
    const res = await postGrant(app, base64url(forged));
    expect({ status: res.status, error: res.body['error'], code: res.body['code'] }).toEqual({
      status: 400,
      error: 'invalid_grant',
      code: 'ERR_SAML_STRUCTURE_INVALID',
    });
  });
});
