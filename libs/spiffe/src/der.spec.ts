import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificatePem, splitDerSequences } from './der.js';

describe('splitDerSequences', () => {
  it.each([
    ['one short sequence', [0x30, 0x01, 0x00], 1],
    ['two sequences', [0x30, 0x00, 0x30, 0x01, 0x05], 2],
    ['a long-form length', [0x30, 0x81, 0x01, 0x07], 1],
    ['nothing', [], 0],
  ])('splits %s', (_name, bytes, count) => {
    expect(splitDerSequences(Buffer.from(bytes), 8)).toHaveLength(count);
  });

  it.each([
    ['not a sequence', [0x31, 0x00]],
    ['a truncated element', [0x30, 0x05, 0x00]],
    ['trailing bytes', [0x30, 0x00, 0x30]],
    ['the indefinite length (BER, not DER)', [0x30, 0x80, 0x00, 0x00]],
    ['a five-octet length', [0x30, 0x85, 0, 0, 0, 0, 1, 0]],
    ['more elements than allowed', [0x30, 0x00, 0x30, 0x00, 0x30, 0x00]],
  ])('refuses %s', (_name, bytes) => {
    expect(splitDerSequences(Buffer.from(bytes), 2)).toBeUndefined();
  });

  it('round-trips a certificate through PEM', () => {
    // A throw-away self-signed certificate is not at hand without the dev PKI: a key's SPKI DER
    // is a SEQUENCE too, which is all the splitter looks at.
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      type: 'spki',
      format: 'der',
    });
    const parts = splitDerSequences(Buffer.concat([spki, spki]), 4);
    expect(parts?.map((p) => p.equals(spki))).toEqual([true, true]);
    expect(certificatePem(spki)).toMatch(
      /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/,
    );
    expect(() => new X509Certificate(certificatePem(spki))).toThrow();
  });
});
