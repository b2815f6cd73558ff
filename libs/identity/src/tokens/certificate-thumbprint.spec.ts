import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import { certificateThumbprint, sameThumbprint } from './certificate-thumbprint.js';

describe('certificateThumbprint (RFC 8705 §3.1)', () => {
  it('is the base64url SHA-256 of the DER, for an X509Certificate and for its DER alike', async () => {
    const ca = await DevCertificateAuthority.create();
    const issued = await ca.issueClient({ spiffeId: 'spiffe://shield.test/thumbprint' });
    const cert = new X509Certificate(issued.certPem);
    // The dev PKI computes the same digest independently, as hex.
    const expected = Buffer.from(issued.fingerprint256, 'hex').toString('base64url');
    expect(certificateThumbprint(cert)).toBe(expected);
    expect(certificateThumbprint(Buffer.from(cert.raw))).toBe(expected);
    expect(expected).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const other = new X509Certificate(
      (await ca.issueClient({ spiffeId: 'spiffe://shield.test/other' })).certPem,
    );
    expect(certificateThumbprint(other)).not.toBe(expected);
  });

  it('refuses what is not a certificate', () => {
    expect(() => certificateThumbprint('pem text' as unknown as Buffer)).toThrow(TypeError);
  });

  it('compares thumbprints exactly', () => {
    expect(sameThumbprint('abc', 'abc')).toBe(true);
    expect(sameThumbprint('abc', 'abd')).toBe(false);
    expect(sameThumbprint('abc', 'abcd')).toBe(false);
  });
});
