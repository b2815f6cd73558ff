import { describe, expect, it } from 'vitest';
import { isShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
import { decodeSamlMessage, inspectSamlXml, type SamlMessageKind } from './saml-structure.js';

// Hand-written messages with the shape of a signed response. The signature values are dummies:
// these checks run before any cryptography (which the end-to-end specs exercise with real keys).
const P = 'urn:oasis:names:tc:SAML:2.0:protocol';
const A = 'urn:oasis:names:tc:SAML:2.0:assertion';
const DS = 'http://www.w3.org/2000/09/xmldsig#';

interface Parts {
  c14n?: string;
  sigAlg?: string;
  digestAlg?: string;
  transforms?: string[];
  refUri?: string;
  signedInfo?: string;
  sigExtra?: string;
  assertionExtra?: string;
  subjectExtra?: string;
  nameId?: string;
  responseExtra?: string;
  assertionAttrs?: string;
  noAssertionSignature?: boolean;
  status?: string;
}

function signature(id: string, p: Parts): string {
  const transforms = (
    p.transforms ?? [
      'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
      'http://www.w3.org/2001/10/xml-exc-c14n#',
    ]
  )
    .map((t) => `<ds:Transform Algorithm="${t}"/>`)
    .join('');
  const signedInfo =
    p.signedInfo ??
    `<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="${p.c14n ?? 'http://www.w3.org/2001/10/xml-exc-c14n#'}"/>` +
      `<ds:SignatureMethod Algorithm="${p.sigAlg ?? 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256'}"/>` +
      `<ds:Reference URI="${p.refUri ?? `#${id}`}"><ds:Transforms>${transforms}</ds:Transforms>` +
      `<ds:DigestMethod Algorithm="${p.digestAlg ?? 'http://www.w3.org/2001/04/xmlenc#sha256'}"/>` +
      `<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>`;
  return `<ds:Signature xmlns:ds="${DS}">${signedInfo}<ds:SignatureValue>AAAA</ds:SignatureValue>${p.sigExtra ?? ''}</ds:Signature>`;
}

function response(p: Parts = {}): string {
  return (
    `<samlp:Response xmlns:samlp="${P}" ID="_r" Version="2.0" Destination="https://sp/acs" InResponseTo="_req">` +
    `<saml:Issuer xmlns:saml="${A}">https://idp</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${p.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
    (p.responseExtra ?? '') +
    `<saml:Assertion xmlns:saml="${A}" ID="_a" Version="2.0"${p.assertionAttrs ?? ''}><saml:Issuer>https://idp</saml:Issuer>` +
    (p.noAssertionSignature ? '' : signature('_a', p)) +
    `<saml:Subject><saml:NameID>${p.nameId ?? 'alice@example.com'}</saml:NameID>${p.subjectExtra ?? ''}</saml:Subject>` +
    (p.assertionExtra ?? '') +
    `</saml:Assertion></samlp:Response>`
  );
}

function codeOf(fn: () => unknown): ShieldErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (isShieldError(err)) return err.code;
    throw err;
  }
}

const inspect =
  (xml: string, kind: SamlMessageKind = 'response') =>
  () =>
    inspectSamlXml(xml, kind);

describe('decodeSamlMessage', () => {
  const xml = '<a>é</a>';
  it.each<[string, unknown, 'base64' | 'base64url', ShieldErrorCode | 'ok']>([
    ['base64', Buffer.from(xml).toString('base64'), 'base64', 'ok'],
    [
      'base64 wrapped at 4 characters with CRLF',
      Buffer.from(xml)
        .toString('base64')
        .replace(/(.{4})/g, '$1\r\n'),
      'base64',
      'ok',
    ],
    ['base64url without padding', Buffer.from(xml).toString('base64url'), 'base64url', 'ok'],
    ['base64url with padding', Buffer.from('<ab/>').toString('base64url') + '=', 'base64url', 'ok'],
    ['base64url with a wrong padding', 'AAAAA=', 'base64url', 'ERR_SAML_MALFORMED'],
    ['base64 where base64url is expected', '+/+/', 'base64url', 'ERR_SAML_MALFORMED'],
    ['characters outside base64', 'PGE+*', 'base64', 'ERR_SAML_MALFORMED'],
    ['a length that is not a multiple of 4', 'PGE+Z', 'base64', 'ERR_SAML_MALFORMED'],
    ['an empty value', '', 'base64', 'ERR_SAML_MALFORMED'],
    ['an array (a field sent twice)', ['a', 'b'], 'base64', 'ERR_SAML_MALFORMED'],
    [
      'invalid UTF-8',
      Buffer.from([0x3c, 0x61, 0xff, 0x3e]).toString('base64'),
      'base64',
      'ERR_SAML_MALFORMED',
    ],
    [
      'more than the decoded cap',
      Buffer.alloc(5000, 0x61).toString('base64'),
      'base64',
      'ERR_SAML_TOO_LARGE',
    ],
    ['a huge value, refused before decoding', 'A'.repeat(10_000_000), 'base64', 'ERR_SAML_TOO_LARGE'],
    // 4096 bytes: 5464 encoded characters, and up to 172 more for line breaks.
    ['over the encoded cap without line breaks', 'A'.repeat(5468), 'base64', 'ERR_SAML_TOO_LARGE'],
    [
      'one byte over the decoded cap, within the encoded one',
      Buffer.alloc(4097, 0x61).toString('base64'),
      'base64',
      'ERR_SAML_TOO_LARGE',
    ],
  ])('%s', (_name, value, encoding, expected) => {
    expect(codeOf(() => decodeSamlMessage(value, 4096, encoding))).toBe(expected);
  });

  it('drops a UTF-8 byte order mark', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<a/>')]).toString('base64');
    expect(decodeSamlMessage(bom, 4096, 'base64')).toBe('<a/>');
  });
});

describe('inspectSamlXml: markup refused on the raw text', () => {
  it.each<[string, string, ShieldErrorCode]>([
    // Not even well-formed: refused for the DOCTYPE, so the scan runs before any parser.
    [
      'a DOCTYPE in a broken document',
      '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;',
      'ERR_SAML_DOCTYPE_FORBIDDEN',
    ],
    ['a lowercase doctype', `<!doctype x>${response()}`, 'ERR_SAML_DOCTYPE_FORBIDDEN'],
    ['an ENTITY declaration alone', `<!ENTITY x "y">${response()}`, 'ERR_SAML_DOCTYPE_FORBIDDEN'],
    ['a comment anywhere', response({ responseExtra: '<!-- hi -->' }), 'ERR_SAML_STRUCTURE_INVALID'],
    [
      'a comment inside NameID',
      response({ nameId: 'admin@example.com<!---->.evil.example' }),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    ['a CDATA section', response({ nameId: '<![CDATA[alice]]>' }), 'ERR_SAML_STRUCTURE_INVALID'],
    ['a processing instruction', response({ responseExtra: '<?evil x?>' }), 'ERR_SAML_STRUCTURE_INVALID'],
    ['an undefined entity reference', response({ nameId: '&lol;' }), 'ERR_SAML_MALFORMED'],
    ['a NUL character', response({ nameId: 'a\u0000b' }), 'ERR_SAML_MALFORMED'],
    ['not XML', 'hello', 'ERR_SAML_MALFORMED'],
    ['an unclosed element', response().slice(0, -5), 'ERR_SAML_MALFORMED'],
  ])('%s', (_name, xml, code) => {
    expect(codeOf(inspect(xml))).toBe(code);
  });

  it('accepts white space between the XML declaration and the root, and after the root', () => {
    expect(codeOf(inspect(`<?xml version="1.0" encoding="UTF-8"?>\r\n  ${response()}\n`))).toBe('ok');
    expect(codeOf(inspect(`\n${response()}`))).toBe('ok');
  });

  it('accepts an XML declaration and character references', () => {
    expect(
      codeOf(inspect(`<?xml version="1.0" encoding="UTF-8"?>${response({ nameId: 'al&#105;ce' })}`)),
    ).toBe('ok');
  });
});

describe('inspectSamlXml: structure', () => {
  it('reads the unverified facts of a well-shaped response', () => {
    expect(inspectSamlXml(response(), 'response')).toMatchObject({
      kind: 'response',
      assertionId: '_a',
      assertionIssuer: 'https://idp',
      nameId: 'alice@example.com',
      responseId: '_r',
      responseIssuer: 'https://idp',
      responseSigned: false,
      destination: 'https://sp/acs',
      inResponseTo: '_req',
      statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
    });
  });

  it.each<[string, string, ShieldErrorCode]>([
    [
      'a Response in the assertion namespace',
      response().replace(`xmlns:samlp="${P}"`, `xmlns:samlp="${A}"`),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'an assertion nested in Extensions',
      response()
        .replace('<saml:Assertion', `<samlp:Extensions><saml:Assertion`)
        .replace('</saml:Assertion>', '</saml:Assertion></samlp:Extensions>'),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'a duplicated ID through another ID attribute name',
      response({ subjectExtra: `<saml:SubjectConfirmation Id="_a"/>` }),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'an ID that is not an NCName',
      response().replace('ID="_a"', 'ID="a b"').replace('URI="#_a"', 'URI="#a b"'),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'an assertion without Version',
      response().replace('ID="_a" Version="2.0"', 'ID="_a"'),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    ['an unsigned assertion', response({ noAssertionSignature: true }), 'ERR_SAML_SIGNATURE_INVALID'],
    [
      'a signature inside Subject',
      response({ subjectExtra: signature('_a', {}) }),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'two signatures on the assertion',
      response({ assertionExtra: signature('_a', {}) }),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    ['a Reference to another element', response({ refUri: '#_r' }), 'ERR_SAML_SIGNATURE_INVALID'],
    ['an empty Reference URI (the whole document)', response({ refUri: '' }), 'ERR_SAML_SIGNATURE_INVALID'],
    [
      'an XPath transform',
      response({ transforms: ['http://www.w3.org/TR/1999/REC-xpath-19991116'] }),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'no enveloped-signature transform',
      response({ transforms: ['http://www.w3.org/2001/10/xml-exc-c14n#'] }),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'c14n with comments',
      response({ c14n: 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments' }),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'RSA-SHA1',
      response({ sigAlg: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' }),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'HMAC-SHA1',
      response({ sigAlg: 'http://www.w3.org/2000/09/xmldsig#hmac-sha1' }),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'a SHA-1 digest',
      response({ digestAlg: 'http://www.w3.org/2000/09/xmldsig#sha1' }),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    ['a ds:Object in the signature', response({ sigExtra: '<ds:Object/>' }), 'ERR_SAML_STRUCTURE_INVALID'],
    [
      'two References',
      response().replace(/<ds:Reference[\s\S]*<\/ds:Reference>/, (ref) => ref + ref),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'a Reference below SignedInfo, not its child',
      response().replace(
        /(<ds:SignatureMethod [^>]*)\/>(<ds:Reference[\s\S]*<\/ds:Reference>)/,
        '$1>$2</ds:SignatureMethod>',
      ),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'no SignatureMethod',
      response().replace(/<ds:SignatureMethod [^>]*\/>/, ''),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'no Transforms',
      response().replace(/<ds:Transforms>[\s\S]*<\/ds:Transforms>/, ''),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    ['no DigestMethod', response().replace(/<ds:DigestMethod [^>]*\/>/, ''), 'ERR_SAML_SIGNATURE_INVALID'],
    [
      'no DigestValue',
      response().replace('<ds:DigestValue>AAAA</ds:DigestValue>', ''),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    ['a NameID holding an element', response({ nameId: 'alice<saml:X/>' }), 'ERR_SAML_STRUCTURE_INVALID'],
    ['an empty NameID', response({ nameId: '' }), 'ERR_SAML_STRUCTURE_INVALID'],
    [
      'two NameIDs',
      response({ subjectExtra: '<saml:NameID>bob</saml:NameID>' }),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'an assertion without Issuer',
      response().replace('<saml:Issuer>https://idp</saml:Issuer>', ''),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    ['two Status elements', response({ responseExtra: '<samlp:Status/>' }), 'ERR_SAML_STRUCTURE_INVALID'],
    [
      'a Status without StatusCode',
      response().replace(/<samlp:StatusCode [^>]*\/>/, ''),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'a second Response inside the response',
      response({ responseExtra: `<samlp:Extensions><samlp:Response/></samlp:Extensions>` }),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'an Assertion in another namespace',
      response().replace(`<saml:Assertion xmlns:saml="${A}"`, `<saml:Assertion xmlns:saml="urn:x"`),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'an empty assertion Issuer',
      response().replace('<saml:Issuer>https://idp</saml:Issuer>', '<saml:Issuer></saml:Issuer>'),
      'ERR_SAML_ISSUER_INVALID',
    ],
    [
      'a Response without Version',
      response().replace('ID="_r" Version="2.0"', 'ID="_r"'),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'two Response Issuers',
      response({ responseExtra: `<saml:Issuer xmlns:saml="${A}">https://idp</saml:Issuer>` }),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
    [
      'two signatures on the response',
      response({ responseExtra: signature('_r', {}) + signature('_r', {}) }),
      'ERR_SAML_SIGNATURE_INVALID',
    ],
    [
      'nesting 60 deep',
      response({ assertionExtra: '<x>'.repeat(60) + '</x>'.repeat(60) }),
      'ERR_SAML_STRUCTURE_INVALID',
    ],
  ])('refuses %s', (_name, xml, code) => {
    expect(codeOf(inspect(xml))).toBe(code);
  });

  it('accepts a signed response around the signed assertion', () => {
    expect(inspectSamlXml(response({ responseExtra: signature('_r', {}) }), 'response').responseSigned).toBe(
      true,
    );
  });

  it('reports an error status without assertion as such', () => {
    const xml = response({ status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }).replace(
      /<saml:Assertion[\s\S]*<\/saml:Assertion>/,
      '',
    );
    expect(codeOf(inspect(xml))).toBe('ERR_SAML_STATUS_NOT_SUCCESS');
  });

  it('takes a bare assertion as kind "assertion" only', () => {
    const assertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(response())?.[0] ?? '';
    expect(codeOf(inspect(assertion, 'assertion'))).toBe('ok');
    expect(codeOf(inspect(assertion, 'response'))).toBe('ERR_SAML_STRUCTURE_INVALID');
    expect(codeOf(inspect(response(), 'assertion'))).toBe('ERR_SAML_STRUCTURE_INVALID');
  });
});

describe('inspectSamlXml: the children of a Signature (XML-DSig §4.1)', () => {
  const sigValue = '<ds:SignatureValue>AAAA</ds:SignatureValue>';

  it('accepts SignedInfo, SignatureValue and one KeyInfo, in that order', () => {
    expect(
      codeOf(inspect(response({ sigExtra: '<ds:KeyInfo><ds:KeyName>idp</ds:KeyName></ds:KeyInfo>' }))),
    ).toBe('ok');
  });

  // The child order refuses the first five: it has room for one KeyInfo only, so a second KeyInfo
  // (also tested with real signed messages in test/saml) needs no check of its own. The SignedInfo
  // count refuses a second SignedInfo wherever it is, nested in KeyInfo included.
  it.each<[string, string]>([
    ['two KeyInfo', response({ sigExtra: '<ds:KeyInfo/><ds:KeyInfo/>' })],
    ['two SignatureValue', response({ sigExtra: sigValue })],
    ['no SignatureValue', response().replace(sigValue, '')],
    ['a KeyInfo in another namespace', response({ sigExtra: '<x:KeyInfo xmlns:x="urn:x"/>' })],
    ['an element after KeyInfo', response({ sigExtra: '<ds:KeyInfo/><ds:KeyName/>' })],
    ['a second SignedInfo after SignatureValue', response({ sigExtra: '<ds:SignedInfo/>' })],
    [
      'a second SignedInfo nested in KeyInfo',
      response({ sigExtra: '<ds:KeyInfo><ds:SignedInfo/></ds:KeyInfo>' }),
    ],
    [
      'a SignatureValue holding an element',
      response().replace(sigValue, '<ds:SignatureValue>AA<ds:X/>AA</ds:SignatureValue>'),
    ],
  ])('refuses %s', (_name, xml) => {
    expect(codeOf(inspect(xml))).toBe('ERR_SAML_SIGNATURE_INVALID');
  });
});
