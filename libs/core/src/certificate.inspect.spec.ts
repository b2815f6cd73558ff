import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateFingerprint, parseSpiffeId, spiffeIdOf, subjectAltNames } from '@inference-shield/core';
import { createTestPki, DevCertificateAuthority, type TestPki } from '@inference-shield/dev-pki';

describe('parseSpiffeId', () => {
  it.each([
    ['spiffe://shield.local/demo', 'shield.local', '/demo'],
    ['spiffe://shield.local', 'shield.local', ''],
    ['spiffe://a-b_c.9/ns/prod/sa/Model_1.v-2', 'a-b_c.9', '/ns/prod/sa/Model_1.v-2'],
    ['spiffe://td/' + 'a'.repeat(2048 - 'spiffe://td/'.length), 'td', '/' + 'a'.repeat(2048 - 12)],
  ])('accepts %s', (id, trustDomain, path) => {
    expect(parseSpiffeId(id)).toEqual({ trustDomain, path });
  });

  it.each([
    ['uppercase scheme', 'SPIFFE://shield.local/demo'],
    ['other scheme', 'https://shield.local/demo'],
    ['no authority', 'spiffe:/shield.local/demo'],
    ['empty trust domain', 'spiffe:///demo'],
    ['uppercase trust domain', 'spiffe://Shield.local/demo'],
    ['port', 'spiffe://shield.local:443/demo'],
    ['userinfo', 'spiffe://user@shield.local/demo'],
    ['query', 'spiffe://shield.local/demo?x=1'],
    ['fragment', 'spiffe://shield.local/demo#x'],
    ['percent-encoding', 'spiffe://shield.local/de%6Do'],
    ['trailing slash', 'spiffe://shield.local/demo/'],
    ['root slash only', 'spiffe://shield.local/'],
    ['empty segment', 'spiffe://shield.local/a//b'],
    ['dot segment', 'spiffe://shield.local/a/./b'],
    ['dot-dot segment', 'spiffe://shield.local/a/../b'],
    ['space', 'spiffe://shield.local/de mo'],
    ['non-ASCII', 'spiffe://shield.local/dém'],
    ['too long', 'spiffe://td/' + 'a'.repeat(2048 - 'spiffe://td/'.length + 1)],
    ['empty', ''],
  ])('refuses %s', (_label, id) => {
    expect(parseSpiffeId(id)).toBeUndefined();
  });
});

describe('subjectAltNames', () => {
  it('parses each type and puts IPv6 in RFC 5952 form', () => {
    const sans = subjectAltNames({
      subjectaltname:
        'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, URI:spiffe://td/a, email:a@b.c',
    });
    expect(sans).toEqual({
      dns: ['localhost'],
      ip: ['127.0.0.1', '::1'],
      uri: ['spiffe://td/a'],
      email: ['a@b.c'],
    });
  });

  it('does not let an escaped comma forge a second entry (CVE-2021-44532 format)', () => {
    const sans = subjectAltNames({ subjectaltname: 'DNS:"evil.example\\u002c URI:spiffe://td/admin"' });
    expect(sans.dns).toEqual(['evil.example, URI:spiffe://td/admin']);
    expect(sans.uri).toEqual([]);
  });

  it.each([
    ['an unterminated quote', 'DNS:"abc'],
    ['a bad escape', 'DNS:"a\\x41"'],
  ])('yields no names for %s', (_label, subjectaltname) => {
    expect(subjectAltNames({ subjectaltname })).toEqual({ dns: [], ip: [], uri: [], email: [] });
  });

  it('yields no names without a SAN', () => {
    expect(subjectAltNames({})).toEqual({ dns: [], ip: [], uri: [], email: [] });
  });

  it('reads quoted values from a real certificate, as Node renders them', async () => {
    const ca = await DevCertificateAuthority.create();
    const issued = await ca.issueClient({
      uris: ['spiffe://td/a,b', 'urn:x:"quoted"'],
      dnsNames: ['a, DNS:evil.example'],
    });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subjectAltName).toContain('"'); // Node did escape them
    expect(subjectAltNames(cert)).toEqual({
      dns: ['a, DNS:evil.example'],
      ip: [],
      uri: ['spiffe://td/a,b', 'urn:x:"quoted"'],
      email: [],
    });
  });
});

describe('spiffeIdOf and certificateFingerprint on dev PKI certificates', () => {
  let dir: string;
  let pki: TestPki;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shield-inspect-'));
    pki = await createTestPki(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the one SPIFFE ID of a client certificate, from X509Certificate and peer-certificate shapes', () => {
    const cert = new X509Certificate(pki.client.certPem);
    expect(spiffeIdOf(cert)).toBe('spiffe://shield.local/test-client');
    expect(spiffeIdOf({ subjectaltname: cert.subjectAltName })).toBe('spiffe://shield.local/test-client');
  });

  it.each(['noSpiffe', 'twoSpiffe', 'invalidSpiffe'] as const)(
    'gives no SPIFFE ID for identities.%s',
    (name) => {
      expect(spiffeIdOf(new X509Certificate(pki.identities[name].certPem))).toBeUndefined();
    },
  );

  it('gives no SPIFFE ID for a server certificate', () => {
    expect(spiffeIdOf(new X509Certificate(pki.server.certPem))).toBeUndefined();
  });

  it('fingerprints the DER with SHA-256, lowercase hex without colons, from either input', () => {
    const cert = new X509Certificate(pki.server.certPem);
    const expected = cert.fingerprint256.replace(/:/g, '').toLowerCase();
    expect(certificateFingerprint(cert)).toBe(expected);
    expect(certificateFingerprint(cert.raw)).toBe(expected);
    expect(pki.server.fingerprint256).toBe(expected);
    expect(certificateFingerprint(new X509Certificate(pki.client.certPem))).not.toBe(expected);
  });
});
