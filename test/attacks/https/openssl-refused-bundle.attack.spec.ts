import 'reflect-metadata';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isShieldError, type ShieldError } from '@inference-shield/core';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { call, testPki } from '../../support/harness.js';
import { run } from '../../https/support/clients.js';
import { AttackAppModule } from './attack.app.js';

/**
 * A server certificate with an RSA-512 key, signed by the test CA (openssl CLI: the dev PKI issues
 * ECDSA only). Every check of the loader passes (it parses, is valid, matches its key, has
 * serverAuth), but OpenSSL's security level refuses it when it is put in a TLS context.
 */
async function issueRsa512Server(pki: TestPki): Promise<{ cert: string; key: string }> {
  const key = join(pki.dir, 'rsa512-key.pem');
  const csr = join(pki.dir, 'rsa512.csr');
  const cert = join(pki.dir, 'rsa512.pem');
  const ext = join(pki.dir, 'rsa512.ext');
  writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const steps: string[][] = [
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:512', '-out', key],
    ['req', '-new', '-key', key, '-subj', '/CN=localhost', '-out', csr],
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      pki.ca.cert,
      '-CAkey',
      pki.ca.key,
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      cert,
    ],
  ];
  for (const args of steps) {
    const r = await run('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  }
  return { cert, key };
}

function replaceFile(path: string, data: Buffer | string): void {
  writeFileSync(`${path}.tmp`, data, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

describe('a bundle the loader accepts but OpenSSL refuses (RSA-512 key)', () => {
  let pki: TestPki;
  let weak: { cert: string; key: string };
  let https: HttpsApp | undefined;
  const errors: ShieldError[] = [];

  beforeAll(async () => {
    pki = await testPki('openssl-refused');
    weak = await issueRsa512Server(pki);
  });

  afterAll(async () => {
    await https?.close();
  });

  // Before: start-up failed with a bare OpenSSL Error ("ee key too small") naming no file.
  it('refuses to start with a typed ERR_CERT_INVALID naming the files', async () => {
    let caught: unknown;
    try {
      const app = await createHttpsApp(AttackAppModule, { tls: weak, nest: { logger: false } });
      await app.close();
    } catch (err) {
      caught = err;
    }
    expect(isShieldError(caught)).toBe(true);
    const err = caught as ShieldError;
    expect(err.code).toBe('ERR_CERT_INVALID');
    expect(err.message).toContain(weak.cert);
    expect(err.message).toContain('ee key too small');
    // Never key material in the message.
    const keyLine = readFileSync(weak.key, 'latin1').split('\n')[1] ?? 'unreachable';
    expect(err.message).not.toContain(keyLine);
  });

  // Before: the watcher took the weak bundle as its own, setSecureContext threw (reported), the
  // server kept the old certificate, and reload() answered true ("valid and in use").
  it('refuses it as a replacement: reload() is false, the old certificate keeps being served', async () => {
    const live = join(pki.dir, 'live');
    mkdirSync(live);
    const cert = join(live, 'server.pem');
    const key = join(live, 'server-key.pem');
    copyFileSync(pki.server.cert, cert);
    copyFileSync(pki.server.key, key);
    https = await createHttpsApp(AttackAppModule, {
      tls: { cert, key },
      reload: { sighup: false, debounceMs: 60_000, onReloadError: (e) => errors.push(e) },
      nest: { logger: false },
    });
    const port = (await https.listen(0, '127.0.0.1')).port;

    replaceFile(key, readFileSync(weak.key));
    replaceFile(cert, readFileSync(weak.cert));
    expect(https.reload()).toBe(false);
    expect(https.reload()).toBe(false);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.every((e) => e.code === 'ERR_CERT_INVALID')).toBe(true);
    expect(https.certificate().fingerprint256).toBe(pki.server.fingerprint256);
    expect((await call(port, { ca: pki.ca.certPem })).serverFingerprint).toBe(pki.server.fingerprint256);

    // A good replacement afterwards is taken.
    const next = await pki.ca.authority.issueServer();
    replaceFile(key, next.keyPem);
    replaceFile(cert, next.certPem);
    expect(https.reload()).toBe(true);
    expect((await call(port, { ca: pki.ca.certPem })).serverFingerprint).toBe(next.fingerprint256);
  });
});
