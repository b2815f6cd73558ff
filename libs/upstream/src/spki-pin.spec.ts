import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevCertificateAuthority, type IssuedCertificate } from '@inference-shield/dev-pki';
import { buildServerIdentityCheck, spkiPin } from './spki-pin.js';

let dir: string;
let server: IssuedCertificate;
let other: IssuedCertificate;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pin-'));
  const ca = await DevCertificateAuthority.create();
  server = await ca.issueServer({ hosts: ['llm.example'] });
  other = await ca.issueServer({ hosts: ['llm.example'] });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The PeerCertificate fields the check reads, as Node hands them to checkServerIdentity. */
function peer(cert: IssuedCertificate) {
  const x = new X509Certificate(cert.certPem);
  return { raw: x.raw, subject: { CN: 'llm.example' }, subjectaltname: 'DNS:llm.example' } as never;
}

describe('spkiPin', () => {
  it('equals the RFC 7469 pin OpenSSL computes', () => {
    const file = join(dir, 'c.pem');
    writeFileSync(file, server.certPem);
    const pubkey = execFileSync('openssl', ['x509', '-in', file, '-pubkey', '-noout']);
    const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pubkey });
    const expected = execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der }).toString(
      'base64',
    );
    expect(spkiPin(new X509Certificate(server.certPem))).toBe(expected);
    expect(spkiPin(peer(server))).toBe(expected);
  });
});

describe('buildServerIdentityCheck', () => {
  it.each([
    ['no pins, right host', [], 'llm.example', () => server, undefined],
    ['no pins, wrong host', [], 'other.example', () => server, 'ERR_TLS_CERT_ALTNAME_INVALID'],
    [
      'pin matches',
      () => [spkiPin(new X509Certificate(server.certPem))],
      'llm.example',
      () => server,
      undefined,
    ],
    [
      'pin of another key',
      () => [spkiPin(new X509Certificate(other.certPem))],
      'llm.example',
      () => server,
      'ERR_UPSTREAM_PIN_MISMATCH',
    ],
    [
      'wrong host wins over a matching pin',
      () => [spkiPin(new X509Certificate(server.certPem))],
      'other.example',
      () => server,
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ],
  ] as const)('%s', (_name, pins, host, cert, code) => {
    const list = typeof pins === 'function' ? pins() : pins;
    const result = buildServerIdentityCheck(list)(host, peer(cert()));
    expect((result as { code?: string } | undefined)?.code).toBe(code);
  });
});
