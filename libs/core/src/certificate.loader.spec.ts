import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isShieldError,
  loadCaBundle,
  loadTlsBundle,
  readBoundedFile,
  type ShieldErrorCode,
  type TlsFiles,
  type TlsUsage,
} from '@inference-shield/core/internal';
import { createTestPki, DevCertificateAuthority, type TestPki } from '@inference-shield/dev-pki';

let dir: string;
let pki: TestPki;
const file = (name: string): string => join(dir, name);

// Ways a PEM certificate block gets mangled by hand or by a template. OpenSSL trusts the indented
// and space-padded forms, ignores the one-line form, and a truncated block swallows the next one.
const indented = (pem: string): string => pem.replace(/^(?!-----)(.+)$/gm, '  $1');
const spacePadded = (pem: string): string => pem.replace(/\n/g, ' \n');
const oneLine = (pem: string): string => `${pem.trim().split('\n').join(' ')}\n`;
const truncated = (pem: string): string => `${pem.split('\n').slice(0, 3).join('\n')}\n`;
/** The same DER under another PEM label, which OpenSSL also loads as a certificate. */
const relabelled = (pem: string, label: string): string =>
  pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, `-----$1 ${label}-----`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shield-loader-'));
  pki = await createTestPki(join(dir, 'pki'));
  writeFileSync(file('garbage.pem'), 'not a certificate at all\n');
  writeFileSync(
    file('broken-cert.pem'),
    '-----BEGIN CERTIFICATE-----\nQUJDREVGR0g=\n-----END CERTIFICATE-----\n',
  );
  writeFileSync(
    file('garbage-key.pem'),
    '-----BEGIN PRIVATE KEY-----\nQUJDREVGR0g=\n-----END PRIVATE KEY-----\n',
  );
  writeFileSync(
    file('encrypted-key.pem'),
    createPrivateKey(pki.server.keyPem).export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'correct horse',
    }),
  );
  writeFileSync(file('server-plus-expired-chain.pem'), pki.server.certPem + pki.expired.server.certPem);
  writeFileSync(file('crl-wrong-label.pem'), pki.ca.crlPem.replace(/X509 CRL/g, 'CRL'));
  writeFileSync(
    file('crl-expired.pem'),
    await pki.ca.authority.crlPem({ nextUpdate: new Date(Date.now() - 24 * 3600_000) }),
  );
  writeFileSync(
    file('crl-future.pem'),
    await pki.ca.authority.crlPem({
      thisUpdate: new Date(Date.now() + 24 * 3600_000),
      nextUpdate: new Date(Date.now() + 48 * 3600_000),
    }),
  );
  // Same issuer name as the test CA, another key: only a signature check tells them apart.
  const impostor = await DevCertificateAuthority.create({ commonName: 'Shield Test CA' });
  writeFileSync(file('crl-forged.pem'), await impostor.crlPem());
  writeFileSync(
    file('crl-garbage-body.pem'),
    '-----BEGIN X509 CRL-----\nQUJDREVGR0g=\n-----END X509 CRL-----\n',
  );
  writeFileSync(
    file('crl-2060.pem'),
    await pki.ca.authority.crlPem({ nextUpdate: new Date('2060-01-01T00:00:00Z') }),
  );
  writeFileSync(file('ca-indented.pem'), indented(pki.ca.certPem));
  writeFileSync(file('ca-space-padded.pem'), spacePadded(pki.ca.certPem));
  writeFileSync(file('ca-then-indented.pem'), pki.ca.certPem + indented(pki.otherCa.ca.certPem));
  writeFileSync(file('ca-then-one-line.pem'), pki.ca.certPem + oneLine(pki.otherCa.ca.certPem));
  writeFileSync(file('ca-after-truncated.pem'), truncated(pki.otherCa.ca.certPem) + pki.ca.certPem);
  writeFileSync(file('ca-then-truncated.pem'), pki.ca.certPem + truncated(pki.otherCa.ca.certPem));
  // A decoy CA in plain form, and the CA that really signs under a label OpenSSL also trusts.
  writeFileSync(
    file('ca-then-trusted-label.pem'),
    pki.otherCa.ca.certPem + relabelled(pki.ca.certPem, 'TRUSTED CERTIFICATE'),
  );
  writeFileSync(
    file('ca-then-x509-label.pem'),
    pki.otherCa.ca.certPem + relabelled(pki.ca.certPem, 'X509 CERTIFICATE'),
  );
  // OpenSSL serves the first certificate of a cert file: here one no check would have seen.
  writeFileSync(
    file('trusted-label-then-server.pem'),
    relabelled(pki.expired.server.certPem, 'TRUSTED CERTIFICATE') + pki.server.certPem,
  );
  writeFileSync(file('ca-with-key.pem'), pki.ca.certPem + pki.server.keyPem);
  writeFileSync(file('server-then-indented-chain.pem'), pki.server.certPem + indented(pki.ca.certPem));
  // Two CAs, comments between them, CRLF line ends on the second: all well-formed PEM.
  writeFileSync(
    file('two-cas.pem'),
    `# Shield Test CA\n${pki.ca.certPem}\n# other CA\r\n${pki.otherCa.ca.certPem.replace(/\n/g, '\r\n')}`,
  );
  writeFileSync(file('over-1mib.pem'), Buffer.alloc(1024 * 1024 + 1, 0x41));
  writeFileSync(file('nine-bytes'), 'nine byte');
  mkdirSync(file('a-directory'));
  execFileSync('mkfifo', [file('fifo.pem')]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusal(files: () => TlsFiles, usage?: TlsUsage): { code: string; message: string } {
  try {
    loadTlsBundle(files(), usage ? { usage } : {});
  } catch (err) {
    if (!isShieldError(err)) throw err;
    return { code: err.code, message: err.message };
  }
  throw new Error('loadTlsBundle accepted the bundle');
}

describe('loadTlsBundle', () => {
  it('loads a valid server bundle with its facts', () => {
    const b = loadTlsBundle(
      { cert: pki.server.chain, key: pki.server.key, ca: pki.ca.cert, crl: pki.ca.crl },
      { usage: 'server' },
    );
    expect(b.cert.toString()).toBe(pki.server.chainPem);
    expect(b.key.toString()).toBe(pki.server.keyPem);
    expect(b.ca?.toString()).toBe(pki.ca.certPem);
    expect(b.crl?.toString()).toBe(pki.ca.crlPem);
    expect(b.fingerprint256).toBe(pki.server.fingerprint256);
    expect(b.fingerprint256).toMatch(/^[0-9a-f]{64}$/);
    expect(b.notBefore.getTime()).toBeLessThan(Date.now());
    expect(b.notAfter.getTime()).toBeGreaterThan(Date.now() + 80 * 24 * 3600_000);
    expect(b.leaf.checkHost('localhost')).toBe('localhost');
    expect(b.spiffeId).toBeUndefined();
    expect(Object.isFrozen(b)).toBe(true);
  });

  it('gives a client bundle its SPIFFE ID', () => {
    const b = loadTlsBundle(
      { cert: pki.client.cert, key: pki.client.key, ca: pki.ca.cert },
      { usage: 'client' },
    );
    expect(b.spiffeId).toBe('spiffe://shield.local/test-client');
  });

  it('accepts a CRL whose nextUpdate is past 2049 (GeneralizedTime, RFC 5280 §4.1.2.5)', () => {
    const b = loadTlsBundle({
      cert: pki.server.cert,
      key: pki.server.key,
      ca: pki.ca.cert,
      crl: file('crl-2060.pem'),
    });
    expect(b.crl?.toString()).toContain('X509 CRL');
  });

  it('takes the clock from options', () => {
    const files = { cert: pki.expired.server.cert, key: pki.expired.server.key };
    expect(() => loadTlsBundle(files)).toThrow();
    expect(loadTlsBundle(files, { now: new Date(Date.now() - 7 * 24 * 3600_000) }).fingerprint256).toBe(
      pki.expired.server.fingerprint256,
    );
  });

  it.each<[string, () => TlsFiles, TlsUsage | undefined, ShieldErrorCode, () => string, RegExp]>([
    [
      'missing certificate',
      () => ({ cert: file('nope.pem'), key: pki.server.key }),
      undefined,
      'ERR_CERT_FILE_UNREADABLE',
      () => file('nope.pem'),
      /ENOENT/,
    ],
    [
      'missing key',
      () => ({ cert: pki.server.cert, key: file('nope-key.pem') }),
      undefined,
      'ERR_CERT_FILE_UNREADABLE',
      () => file('nope-key.pem'),
      /ENOENT/,
    ],
    [
      'a certificate under the TRUSTED CERTIFICATE label before the checked one',
      () => ({ cert: file('trusted-label-then-server.pem'), key: pki.server.key }),
      'server',
      'ERR_CERT_INVALID',
      () => file('trusted-label-then-server.pem'),
      /block #1 is labelled "TRUSTED CERTIFICATE"/,
    ],
    [
      'certificate path is a directory',
      () => ({ cert: file('a-directory'), key: pki.server.key }),
      undefined,
      'ERR_CERT_FILE_UNREADABLE',
      () => file('a-directory'),
      /regular file/,
    ],
    [
      'certificate path is a FIFO (would block a plain read)',
      () => ({ cert: file('fifo.pem'), key: pki.server.key }),
      undefined,
      'ERR_CERT_FILE_UNREADABLE',
      () => file('fifo.pem'),
      /regular file/,
    ],
    [
      'certificate file without PEM',
      () => ({ cert: file('garbage.pem'), key: pki.server.key }),
      undefined,
      'ERR_CERT_INVALID',
      () => file('garbage.pem'),
      /no PEM certificate/,
    ],
    [
      'certificate PEM that is not DER',
      () => ({ cert: file('broken-cert.pem'), key: pki.server.key }),
      undefined,
      'ERR_CERT_INVALID',
      () => file('broken-cert.pem'),
      /cannot be parsed/,
    ],
    [
      'key is garbage',
      () => ({ cert: pki.server.cert, key: file('garbage-key.pem') }),
      undefined,
      'ERR_CERT_KEY_INVALID',
      () => file('garbage-key.pem'),
      /cannot be parsed/,
    ],
    [
      'key is a certificate',
      () => ({ cert: pki.server.cert, key: pki.server.cert }),
      undefined,
      'ERR_CERT_KEY_INVALID',
      () => pki.server.cert,
      /no PEM private key/,
    ],
    [
      'key is encrypted',
      () => ({ cert: pki.server.cert, key: file('encrypted-key.pem') }),
      undefined,
      'ERR_CERT_KEY_INVALID',
      () => file('encrypted-key.pem'),
      /encrypted/,
    ],
    [
      'key of another certificate',
      () => ({ cert: pki.mismatchedKey.server.cert, key: pki.mismatchedKey.server.key }),
      undefined,
      'ERR_CERT_KEY_MISMATCH',
      () => pki.mismatchedKey.server.cert,
      /does not match/,
    ],
    [
      'expired certificate',
      () => ({ cert: pki.expired.server.cert, key: pki.expired.server.key }),
      undefined,
      'ERR_CERT_EXPIRED',
      () => pki.expired.server.cert,
      /expired on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z/,
    ],
    [
      'expired intermediate in the chain',
      () => ({ cert: file('server-plus-expired-chain.pem'), key: pki.server.key }),
      undefined,
      'ERR_CERT_EXPIRED',
      () => file('server-plus-expired-chain.pem'),
      /chain certificate #2/,
    ],
    [
      'not yet valid certificate',
      () => ({ cert: pki.notYetValid.server.cert, key: pki.notYetValid.server.key }),
      undefined,
      'ERR_CERT_NOT_YET_VALID',
      () => pki.notYetValid.server.cert,
      /not valid before \d{4}-/,
    ],
    [
      'server usage of a clientAuth-only certificate',
      () => ({ cert: pki.wrongEku.server.cert, key: pki.wrongEku.server.key }),
      'server',
      'ERR_CERT_USAGE',
      () => pki.wrongEku.server.cert,
      /serverAuth/,
    ],
    [
      'client usage of a serverAuth-only certificate',
      () => ({ cert: pki.wrongEku.client.cert, key: pki.wrongEku.client.key }),
      'client',
      'ERR_CERT_USAGE',
      () => pki.wrongEku.client.cert,
      /clientAuth/,
    ],
    [
      'client usage of a server certificate',
      () => ({ cert: pki.server.cert, key: pki.server.key }),
      'client',
      'ERR_CERT_USAGE',
      () => pki.server.cert,
      /clientAuth/,
    ],
    [
      'missing CA file',
      () => ({ cert: pki.server.cert, key: pki.server.key, ca: file('no-ca.pem') }),
      undefined,
      'ERR_CERT_FILE_UNREADABLE',
      () => file('no-ca.pem'),
      /ENOENT/,
    ],
    [
      'CA file without a certificate',
      () => ({ cert: pki.server.cert, key: pki.server.key, ca: file('garbage.pem') }),
      undefined,
      'ERR_CERT_INVALID',
      () => file('garbage.pem'),
      /CA file/,
    ],
    [
      'CA file whose second certificate is indented (OpenSSL would trust it unchecked)',
      () => ({ cert: pki.server.cert, key: pki.server.key, ca: file('ca-then-indented.pem') }),
      undefined,
      'ERR_CERT_INVALID',
      () => file('ca-then-indented.pem'),
      /CA file .*: certificate #2 is not a well-formed PEM block/,
    ],
    [
      'chain whose intermediate is indented',
      () => ({ cert: file('server-then-indented-chain.pem'), key: pki.server.key }),
      undefined,
      'ERR_CERT_INVALID',
      () => file('server-then-indented-chain.pem'),
      /certificate file .*: certificate #2 is not a well-formed PEM block/,
    ],
    [
      'CRL file that is not a CRL',
      () => ({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, crl: file('garbage.pem') }),
      undefined,
      'ERR_CERT_CRL_INVALID',
      () => file('garbage.pem'),
      /no PEM CRL/,
    ],
    [
      'CRL PEM whose body is not a CRL',
      () => ({
        cert: pki.server.cert,
        key: pki.server.key,
        ca: pki.ca.cert,
        crl: file('crl-garbage-body.pem'),
      }),
      undefined,
      'ERR_CERT_CRL_INVALID',
      () => file('crl-garbage-body.pem'),
      /cannot be parsed/,
    ],
    [
      'CRL with the "CRL" label OpenSSL does not read',
      () => ({
        cert: pki.server.cert,
        key: pki.server.key,
        ca: pki.ca.cert,
        crl: file('crl-wrong-label.pem'),
      }),
      undefined,
      'ERR_CERT_CRL_INVALID',
      () => file('crl-wrong-label.pem'),
      /X509 CRL/,
    ],
    [
      'CRL past its nextUpdate',
      () => ({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, crl: file('crl-expired.pem') }),
      undefined,
      'ERR_CERT_CRL_INVALID',
      () => file('crl-expired.pem'),
      /expired on/,
    ],
    [
      'CRL before its thisUpdate',
      () => ({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, crl: file('crl-future.pem') }),
      undefined,
      'ERR_CERT_CRL_INVALID',
      () => file('crl-future.pem'),
      /not valid before/,
    ],
    [
      'CRL of another CA',
      () => ({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, crl: pki.otherCa.ca.crl }),
      undefined,
      'ERR_CERT_CRL_INVALID',
      () => pki.otherCa.ca.crl,
      /not signed by any certificate of the CA file/,
    ],
    [
      'CRL under the CA name signed by another key',
      () => ({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, crl: file('crl-forged.pem') }),
      undefined,
      'ERR_CERT_CRL_INVALID',
      () => file('crl-forged.pem'),
      /not signed/,
    ],
  ])('refuses %s', (_label, files, usage, code, path, problem) => {
    const err = refusal(files, usage);
    expect(err.code).toBe(code);
    expect(err.message).toContain(path());
    expect(err.message).toMatch(problem);
    // Never key material in a message.
    expect(err.message).not.toContain('PRIVATE KEY');
    for (const pem of [pki.server.keyPem, pki.mismatchedKey.server.keyPem, pki.wrongEku.client.keyPem]) {
      expect(err.message).not.toContain(pem.split('\n')[1]);
    }
  });

  it.each([
    ['an unknown file key', { cert: 'a', key: 'b', chain: 'c' }, {}, /unknown option "chain"/],
    ['an empty cert path', { cert: '', key: 'b' }, {}, /"files\.cert"/],
    ['a CRL without a CA', { cert: 'a', key: 'b', crl: 'c' }, {}, /"files\.crl" needs "files\.ca"/],
    ['an unknown option', { cert: 'a', key: 'b' }, { verify: false }, /unknown option "verify"/],
    ['a bad usage', { cert: 'a', key: 'b' }, { usage: 'both' }, /"options\.usage"/],
  ])('throws a TypeError for %s', (_label, files, opts, message) => {
    expect(() => loadTlsBundle(files as unknown as TlsFiles, opts as never)).toThrow(TypeError);
    expect(() => loadTlsBundle(files as unknown as TlsFiles, opts as never)).toThrow(message);
  });
});

/** The code and message of a ShieldError thrown by `fn`. */
function shieldRefusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (!isShieldError(err)) throw err;
    return { code: err.code, message: err.message };
  }
  throw new Error('accepted');
}

describe('loadCaBundle', () => {
  it('returns the CA file as read', () => {
    expect(loadCaBundle(pki.ca.cert).toString()).toBe(pki.ca.certPem);
  });

  it('accepts several CAs with comments between them and CRLF line ends', () => {
    expect(loadCaBundle(file('two-cas.pem')).equals(readFileSync(file('two-cas.pem')))).toBe(true);
  });

  it('leaves blocks that are no certificate (a private key in the same file) out of the bundle', () => {
    expect(loadCaBundle(file('ca-with-key.pem')).toString()).toContain('PRIVATE KEY');
  });

  it.each<[string, string, ShieldErrorCode, RegExp]>([
    ['a missing file', 'nope-ca.pem', 'ERR_CERT_FILE_UNREADABLE', /CA file .* is unreadable: ENOENT/],
    ['a directory', 'a-directory', 'ERR_CERT_FILE_UNREADABLE', /is not a regular file/],
    ['a FIFO (would block a plain read)', 'fifo.pem', 'ERR_CERT_FILE_UNREADABLE', /is not a regular file/],
    [
      'a file over 1 MiB',
      'over-1mib.pem',
      'ERR_CERT_FILE_UNREADABLE',
      /1048577 bytes, more than the 1048576/,
    ],
    ['a file without PEM', 'garbage.pem', 'ERR_CERT_INVALID', /holds no PEM certificate/],
    ['a PEM block that is not DER', 'broken-cert.pem', 'ERR_CERT_INVALID', /certificate #1 cannot be parsed/],
    ['an indented block', 'ca-indented.pem', 'ERR_CERT_INVALID', /certificate #1 is not a well-formed PEM/],
    [
      'a space-padded block',
      'ca-space-padded.pem',
      'ERR_CERT_INVALID',
      /certificate #1 is not a well-formed/,
    ],
    [
      'a one-line block after a good one',
      'ca-then-one-line.pem',
      'ERR_CERT_INVALID',
      /certificate #2 is not/,
    ],
    [
      'a truncated block before a good one',
      'ca-after-truncated.pem',
      'ERR_CERT_INVALID',
      /#1 is not a well-formed/,
    ],
    [
      'a CA under the TRUSTED CERTIFICATE label after a good one',
      'ca-then-trusted-label.pem',
      'ERR_CERT_INVALID',
      /block #2 is labelled "TRUSTED CERTIFICATE"; only -----BEGIN CERTIFICATE----- blocks/,
    ],
    [
      'a CA under the X509 CERTIFICATE label after a good one',
      'ca-then-x509-label.pem',
      'ERR_CERT_INVALID',
      /block #2 is labelled "X509 CERTIFICATE"/,
    ],
    [
      'a truncated block after a good one',
      'ca-then-truncated.pem',
      'ERR_CERT_INVALID',
      /#2 is not a well-formed/,
    ],
  ])('refuses %s', (_label, name, code, problem) => {
    const err = shieldRefusal(() => loadCaBundle(file(name)));
    expect(err.code).toBe(code);
    expect(err.message).toContain(file(name));
    expect(err.message).toMatch(problem);
    // Names the block, never quotes it.
    for (const pem of [pki.ca.certPem, pki.otherCa.ca.certPem])
      expect(err.message).not.toContain(pem.split('\n')[1]);
  });
});

describe('readBoundedFile', () => {
  it('reads a regular file up to the cap', () => {
    expect(readBoundedFile(file('nine-bytes'), 'test', 9).toString()).toBe('nine byte');
  });

  it.each<[string, string, number, RegExp]>([
    [
      'a file over the cap',
      'nine-bytes',
      8,
      /^API key file .*nine-bytes is 9 bytes, more than the 8 allowed$/,
    ],
    ['a missing file', 'nope', 8, /^API key file .*nope is unreadable: ENOENT/],
    ['a directory', 'a-directory', 8, /^API key file .*a-directory is not a regular file$/],
    ['a FIFO', 'fifo.pem', 8, /^API key file .*fifo\.pem is not a regular file$/],
  ])(
    'refuses %s with ERR_CERT_FILE_UNREADABLE naming the role and the file',
    (_label, name, max, message) => {
      const err = shieldRefusal(() => readBoundedFile(file(name), 'API key', max));
      expect(err.code).toBe('ERR_CERT_FILE_UNREADABLE');
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain('nine byte');
    },
  );

  it('stops at the cap on a file that reports size 0 and streams (procfs)', () => {
    // /proc/self/pagemap claims 0 bytes and would stream gigabytes: only cap + 1 bytes are read
    // (4096 here: pagemap is read in multiples of 8 bytes).
    const err = shieldRefusal(() => readBoundedFile('/proc/self/pagemap', 'CA', 4095));
    expect(err.code).toBe('ERR_CERT_FILE_UNREADABLE');
    expect(err.message).toMatch(/grew beyond the 4095 bytes allowed while being read/);
  });

  it.each([
    ['an empty path', '', 'CA', 1, /"path"/],
    ['an empty role', 'x', '', 1, /"role"/],
    ['a zero cap', 'x', 'CA', 0, /"maxBytes"/],
    ['an unbounded cap', 'x', 'CA', Infinity, /"maxBytes"/],
  ])('throws a TypeError for %s', (_label, path, role, max, message) => {
    expect(() => readBoundedFile(path, role, max)).toThrow(TypeError);
    expect(() => readBoundedFile(path, role, max)).toThrow(message);
  });
});
