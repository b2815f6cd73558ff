import { inflateRawSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { describe, expect, it } from 'vitest';
import { buildAuthnRequest } from './authn-request.js';
import type { ResolvedSamlIdentityProvider, ResolvedSamlOptions } from './saml-options.interface.js';

const options = {
  serviceProvider: {
    entityId: 'https://sp.example/saml?a=1&b="2"',
    acsUrl: 'https://sp.example/acs',
    audience: 'x',
  },
} as unknown as ResolvedSamlOptions;
const idp = {
  ssoUrl: 'https://idp.example/sso?tenant=t1',
  nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
} as unknown as ResolvedSamlIdentityProvider;

describe('buildAuthnRequest (HTTP-Redirect binding)', () => {
  it('deflates a well-formed AuthnRequest with escaped configuration values', () => {
    const { id, redirectUrl } = buildAuthnRequest(options, idp, 'state-1');
    const url = new URL(redirectUrl);
    expect(url.searchParams.get('tenant')).toBe('t1');
    expect(url.searchParams.get('RelayState')).toBe('state-1');
    const xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest') ?? '', 'base64')).toString(
      'utf8',
    );
    const root = new DOMParser().parseFromString(xml, 'text/xml').documentElement;
    expect(root?.localName).toBe('AuthnRequest');
    expect(root?.getAttribute('ID')).toBe(id);
    expect(root?.getAttribute('AssertionConsumerServiceURL')).toBe('https://sp.example/acs');
    expect(root?.getAttribute('Destination')).toBe('https://idp.example/sso?tenant=t1');
    expect(
      root?.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', 'Issuer').item(0)?.textContent,
    ).toBe('https://sp.example/saml?a=1&b="2"');
  });

  it('uses a fresh 160-bit ID each time', () => {
    const a = buildAuthnRequest(options, idp, undefined);
    const b = buildAuthnRequest(options, idp, undefined);
    expect(a.id).toMatch(/^_[0-9a-f]{40}$/);
    expect(a.id).not.toBe(b.id);
    expect(new URL(a.redirectUrl).searchParams.has('RelayState')).toBe(false);
  });
});
