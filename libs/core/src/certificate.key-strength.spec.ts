import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isShieldError, loadTlsBundle } from '@inference-shield/core/internal';

// OpenSSL 3.0's default security level (Node 20) accepts RSA-1024, and our own rule refuses it;
// OpenSSL 3.5's (Node 24, 26) refuses it itself, so its reason comes first there. Mozilla's
// intermediate profile refuses it either way.
const dir = mkdtempSync(join(tmpdir(), 'shield-keystrength-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function selfSigned(name: string, keyArgs: string[]): { cert: string; key: string } {
  const key = join(dir, `${name}-key.pem`);
  const cert = join(dir, `${name}.pem`);
  execFileSync('openssl', ['genpkey', ...keyArgs, '-out', key], { stdio: 'ignore' });
  execFileSync(
    'openssl',
    ['req', '-x509', '-key', key, '-subj', '/CN=localhost', '-days', '2', '-out', cert],
    {
      stdio: 'ignore',
    },
  );
  return { cert, key };
}

describe('certificate key strength', () => {
  it.each([
    [
      'RSA-1024',
      ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
      /RSA key of 1024 bits|refused by OpenSSL \(ee key too small\)/,
    ],
    ['EC secp256k1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'], /curve secp256k1/],
  ])('refuses %s with ERR_CERT_INVALID naming the file', (name, args, reason) => {
    const files = selfSigned(name.replace(/\W/g, ''), args);
    let caught: unknown;
    try {
      loadTlsBundle(files);
    } catch (err) {
      caught = err;
    }
    expect(isShieldError(caught) && caught.code).toBe('ERR_CERT_INVALID');
    expect((caught as Error).message).toContain(files.cert);
    expect((caught as Error).message).toMatch(reason);
  });

  it.each([
    ['RSA-2048', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']],
    ['EC P-384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['Ed25519', ['-algorithm', 'ED25519']],
  ])('accepts %s', (name, args) => {
    const files = selfSigned(name.replace(/\W/g, ''), args);
    expect(loadTlsBundle(files).leaf.subject).toContain('localhost');
  });
});
