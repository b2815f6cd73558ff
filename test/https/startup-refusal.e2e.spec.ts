import 'reflect-metadata';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsBootstrapOptions } from '@inference-shield/https';
import { HelloAppModule } from './fixtures/hello.app.js';
import { testPki } from '../support/harness.js';

/** Start, expecting a refusal; returns the error. */
async function refusal(
  options: unknown,
  adapter: 'express' | 'fastify' = 'express',
): Promise<Error & { code?: string }> {
  const opts = options as HttpsBootstrapOptions;
  try {
    const app = await createHttpsApp(HelloAppModule, { nest: { logger: false }, ...opts }, adapter);
    await app.close();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('the app started');
}

describe('the app refuses to start on a bad certificate, key or option', () => {
  let pki: TestPki;
  let garbage: string;
  let folder: string;
  let unreadable: string;

  beforeAll(async () => {
    pki = await testPki('startup');
    garbage = join(pki.dir, 'garbage.pem');
    writeFileSync(garbage, 'this is not a certificate\n');
    folder = join(pki.dir, 'a-folder.pem');
    mkdirSync(folder);
    unreadable = join(pki.dir, 'unreadable-key.pem');
    writeFileSync(unreadable, pki.server.keyPem, { mode: 0o000 });
    chmodSync(unreadable, 0o000);
  });

  const cases: [string, () => { cert: string; key: string }, string, RegExp][] = [
    [
      'a missing certificate',
      () => ({ cert: join(pki.dir, 'nope.pem'), key: pki.server.key }),
      'ERR_CERT_FILE_UNREADABLE',
      /nope\.pem is unreadable: ENOENT/,
    ],
    [
      'a missing key',
      () => ({ cert: pki.server.cert, key: join(pki.dir, 'nope-key.pem') }),
      'ERR_CERT_FILE_UNREADABLE',
      /nope-key\.pem is unreadable: ENOENT/,
    ],
    [
      'a certificate path that is a folder',
      () => ({ cert: folder, key: pki.server.key }),
      'ERR_CERT_FILE_UNREADABLE',
      /a-folder\.pem/,
    ],
    [
      'a file that holds no certificate',
      () => ({ cert: garbage, key: pki.server.key }),
      'ERR_CERT_INVALID',
      /garbage\.pem holds no PEM certificate/,
    ],
    [
      'a file that holds no key',
      () => ({ cert: pki.server.cert, key: garbage }),
      'ERR_CERT_KEY_INVALID',
      /garbage\.pem holds no PEM private key/,
    ],
    [
      'an expired certificate',
      () => ({ cert: pki.expired.server.cert, key: pki.expired.server.key }),
      'ERR_CERT_EXPIRED',
      /expired-server\.pem expired on/,
    ],
    [
      'a certificate not yet valid',
      () => ({ cert: pki.notYetValid.server.cert, key: pki.notYetValid.server.key }),
      'ERR_CERT_NOT_YET_VALID',
      /not-yet-valid-server\.pem is not valid before/,
    ],
    [
      'a key that does not match',
      () => ({ cert: pki.mismatchedKey.server.cert, key: pki.mismatchedKey.server.key }),
      'ERR_CERT_KEY_MISMATCH',
      /does not match certificate/,
    ],
    [
      'a certificate without serverAuth',
      () => ({ cert: pki.wrongEku.server.cert, key: pki.wrongEku.server.key }),
      'ERR_CERT_USAGE',
      /wrong-eku-server\.pem is not allowed for TLS server/,
    ],
  ];

  it.each(cases)('refuses %s, naming the file and the problem', async (_name, files, code, message) => {
    const err = await refusal({ tls: files() });
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    // Never key material in the message.
    expect(err.message).not.toContain('PRIVATE KEY');
  });

  it('refuses an unreadable key file (permissions)', async () => {
    if (process.getuid?.() === 0) {
      // root reads mode-000 files; the folder case above covers "unreadable" there.
      const err = await refusal({ tls: { cert: pki.server.cert, key: folder } });
      expect(err.code).toBe('ERR_CERT_FILE_UNREADABLE');
      return;
    }
    const err = await refusal({ tls: { cert: pki.server.cert, key: unreadable } });
    expect(err.code).toBe('ERR_CERT_FILE_UNREADABLE');
    expect(err.message).toMatch(/unreadable-key\.pem is unreadable: EACCES/);
  });

  it('refuses a missing client CA and a CRL of another CA (mTLS)', async () => {
    const noCa = await refusal({
      tls: { cert: pki.server.cert, key: pki.server.key },
      mtls: { mode: 'required', ca: { file: join(pki.dir, 'no-ca.pem') } },
    });
    expect(noCa.code).toBe('ERR_CERT_FILE_UNREADABLE');
    expect(noCa.message).toMatch(/no-ca\.pem/);
    const wrongCrl = await refusal({
      tls: { cert: pki.server.cert, key: pki.server.key },
      mtls: { mode: 'required', ca: { file: pki.ca.cert }, crl: pki.otherCa.ca.crl },
    });
    expect(wrongCrl.code).toBe('ERR_CERT_CRL_INVALID');
    expect(wrongCrl.message).toMatch(/other-ca\.crl\.pem/);
  });

  it("refuses a client CA given as a bare string, with core's message (mTLS)", async () => {
    const err = await refusal({
      tls: { cert: pki.server.cert, key: pki.server.key },
      mtls: { mode: 'required', ca: pki.ca.cert },
    });
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toMatch(
      /^"mtls\.ca" must be \{ file: "<path to a PEM file>" \} or \{ pem: "<PEM text>" \}/,
    );
  });

  it.each([
    ['text that holds no certificate', () => 'this is not a certificate\n'],
    ['an indented certificate block', () => pki.ca.certPem.replace(/^/gm, '  ')],
    ['a truncated certificate block', () => pki.ca.certPem.slice(0, 200)],
  ])('refuses a client CA given as PEM text holding %s (mTLS)', async (_name, pem) => {
    const err = await refusal({
      tls: { cert: pki.server.cert, key: pki.server.key },
      mtls: { mode: 'required', ca: { pem: pem() } },
    });
    expect(err.code).toBe('ERR_CERT_INVALID');
    expect(err.message).toMatch(/"mtls\.ca\.pem"/);
  });

  it('refuses an expired certificate with the Fastify adapter too', async () => {
    const err = await refusal(
      { tls: { cert: pki.expired.server.cert, key: pki.expired.server.key } },
      'fastify',
    );
    expect(err.code).toBe('ERR_CERT_EXPIRED');
  });

  it.each([
    [
      'a TLS minimum of TLSv1.1',
      { minVersion: 'TLSv1.1' },
      /"tls\.minVersion" must be "TLSv1\.2" or "TLSv1\.3", got "TLSv1\.1"/,
    ],
    ['a TLS minimum of TLSv1', { minVersion: 'TLSv1' }, /"tls\.minVersion"/],
    ['a TLS minimum of SSLv3', { minVersion: 'SSLv3' }, /"tls\.minVersion"/],
    ['a CBC suite', { ciphers: ['ECDHE-RSA-AES128-SHA'] }, /"tls\.ciphers\[0\]"/],
    ['a static RSA suite', { ciphers: ['AES128-GCM-SHA256'] }, /"tls\.ciphers\[0\]"/],
    ['an empty suite list', { ciphers: [] }, /"tls\.ciphers"/],
    [
      'an unknown TLS option',
      { rejectUnauthorized: false },
      /"tls" has an unknown option "rejectUnauthorized"/,
    ],
  ])('refuses %s with a TypeError naming the field', async (_name, extra, message) => {
    const err = await refusal({ tls: { cert: pki.server.cert, key: pki.server.key, ...extra } });
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toMatch(message);
  });

  it.each([
    ['http', { http: true }],
    ['insecure', { insecure: true }],
    ['port', { port: 80 }],
  ])('has no "%s" option: it is refused as unknown', async (key, extra) => {
    const err = await refusal({ tls: { cert: pki.server.cert, key: pki.server.key }, ...extra });
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toContain(`unknown option "${key}"`);
  });
});
