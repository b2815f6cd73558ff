import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, statSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spiffeIdOf } from '@inference-shield/core/internal';
import {
  createTestPki,
  TEST_CLIENT_SPIFFE_ID,
  type TestPki,
  type TestPkiPair,
} from '@inference-shield/dev-pki';

let dir: string;
let pki: TestPki;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shield-testpki-'));
  pki = await createTestPki(join(dir, 'nested', 'pki'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pairs(): [string, TestPkiPair][] {
  return [
    ['server', pki.server],
    ['client', pki.client],
    ['expired.server', pki.expired.server],
    ['expired.client', pki.expired.client],
    ['notYetValid.server', pki.notYetValid.server],
    ['notYetValid.client', pki.notYetValid.client],
    ['wrongEku.server', pki.wrongEku.server],
    ['wrongEku.client', pki.wrongEku.client],
    ['otherCa.server', pki.otherCa.server],
    ['otherCa.client', pki.otherCa.client],
    ['revoked.client', pki.revoked.client],
    ['mismatchedKey.server', pki.mismatchedKey.server],
    ['wrongHost.server', pki.wrongHost.server],
    ['identities.noSpiffe', pki.identities.noSpiffe],
    ['identities.twoSpiffe', pki.identities.twoSpiffe],
    ['identities.invalidSpiffe', pki.identities.invalidSpiffe],
    ['identities.otherTrustDomain', pki.identities.otherTrustDomain],
  ];
}

describe('createTestPki', () => {
  it('writes every pair: PEMs on disk equal the returned ones, keys 0600, chain = leaf + its CA', () => {
    for (const [name, pair] of pairs()) {
      expect(readFileSync(pair.cert, 'utf8'), name).toBe(pair.certPem);
      expect(readFileSync(pair.key, 'utf8'), name).toBe(pair.keyPem);
      expect(readFileSync(pair.chain, 'utf8'), name).toBe(pair.chainPem);
      expect(statSync(pair.key).mode & 0o777, name).toBe(0o600);
      const issuer = name.startsWith('otherCa') ? pki.otherCa.ca.certPem : pki.ca.certPem;
      expect(pair.chainPem, name).toBe(pair.certPem + issuer);
      expect(new X509Certificate(pair.certPem).verify(new X509Certificate(issuer).publicKey), name).toBe(
        true,
      );
    }
    expect(statSync(pki.ca.key).mode & 0o777).toBe(0o600);
    expect(readFileSync(pki.ca.crl, 'utf8')).toBe(pki.ca.crlPem);
  });

  it('gives each client the SPIFFE identity spiffeIdOf finds', () => {
    expect(pki.client.spiffeId).toBe(TEST_CLIENT_SPIFFE_ID);
    expect(pki.otherCa.client.spiffeId).toBe(TEST_CLIENT_SPIFFE_ID);
    for (const c of [
      pki.client,
      pki.expired.client,
      pki.revoked.client,
      pki.otherCa.client,
      ...Object.values(pki.identities),
    ]) {
      expect(spiffeIdOf(new X509Certificate(c.certPem))).toBe(c.spiffeId);
    }
  });

  it('pairs the mismatched server certificate with a key that is not its own', () => {
    const cert = new X509Certificate(pki.mismatchedKey.server.certPem);
    expect(cert.checkPrivateKey(createPrivateKey(pki.mismatchedKey.server.keyPem))).toBe(false);
    expect(cert.checkPrivateKey(createPrivateKey(pki.server.keyPem))).toBe(true);
  });
});
