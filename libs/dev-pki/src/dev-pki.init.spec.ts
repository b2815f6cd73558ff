import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadTlsBundle } from '@inference-shield/core/internal';
import {
  DevCertificateAuthority,
  devPkiLayout,
  initDevPki,
  type DevPkiLayout,
} from '@inference-shield/dev-pki';

let root: string;
let n = 0;
const fresh = (): string => join(root, `pki-${++n}`);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'shield-init-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (p: string): number => statSync(p).mode & 0o777;

function allFiles(l: DevPkiLayout, clients: string[] = ['demo']): string[] {
  return [
    l.caCert,
    l.caKey,
    l.serverCert,
    l.serverKey,
    l.crl,
    ...clients.flatMap((c) => [l.clientCert(c), l.clientKey(c)]),
  ];
}

function snapshot(files: string[]): Map<string, string> {
  return new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));
}

const statusOf = (report: readonly { path: string; status: string }[], path: string): string | undefined =>
  report.find((r) => r.path === path)?.status;

describe('devPkiLayout', () => {
  it('uses the fixed file names, resolved from the current directory by default', () => {
    const l = devPkiLayout();
    expect(l.dir).toBe(resolve('.shield/pki'));
    expect(l.caCert).toBe(join(l.dir, 'ca.pem'));
    expect(l.caKey).toBe(join(l.dir, 'ca-key.pem'));
    expect(l.serverCert).toBe(join(l.dir, 'localhost.pem'));
    expect(l.serverKey).toBe(join(l.dir, 'localhost-key.pem'));
    expect(l.crl).toBe(join(l.dir, 'ca.crl.pem'));
    expect(l.clientCert('demo')).toBe(join(l.dir, 'clients', 'demo.pem'));
    expect(l.clientKey('demo')).toBe(join(l.dir, 'clients', 'demo-key.pem'));
  });

  it.each(['../evil', 'a/b', '.hidden', ''])(
    'refuses the client name %j (it becomes a file name)',
    (name) => {
      expect(() => devPkiLayout('x').clientCert(name)).toThrow(TypeError);
    },
  );
});

describe('initDevPki', () => {
  it('creates a CA, server, client and CRL that OpenSSL and loadTlsBundle accept; keys 0600, folders 0700', async () => {
    const dir = fresh();
    const pki = await initDevPki({ dir });
    expect(pki.dir).toBe(resolve(dir));
    expect(pki.report.map((r) => r.status)).toEqual(['created', 'created', 'created', 'created']);
    for (const key of [pki.caKey, pki.serverKey, pki.clientKey('demo')]) expect(mode(key)).toBe(0o600);
    for (const cert of [pki.caCert, pki.serverCert, pki.clientCert('demo'), pki.crl])
      expect(mode(cert)).toBe(0o644);
    expect(mode(pki.dir)).toBe(0o700);
    expect(mode(join(pki.dir, 'clients'))).toBe(0o700);
    expect(existsSync(join(pki.dir, '.lock'))).toBe(false);

    const verify = spawnSync(
      'openssl',
      [
        'verify',
        '-crl_check',
        '-CAfile',
        pki.caCert,
        '-CRLfile',
        pki.crl,
        pki.serverCert,
        pki.clientCert('demo'),
      ],
      { encoding: 'utf8' },
    );
    expect(verify.status).toBe(0);

    const server = loadTlsBundle(
      { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert, crl: pki.crl },
      { usage: 'server' },
    );
    expect(server.leaf.checkHost('localhost')).toBe('localhost');
    expect(server.leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    const client = loadTlsBundle(
      { cert: pki.clientCert('demo'), key: pki.clientKey('demo') },
      { usage: 'client' },
    );
    expect(client.spiffeId).toBe('spiffe://shield.local/demo');
    expect(pki.clients).toEqual({ demo: 'spiffe://shield.local/demo' });
  });

  it('is idempotent: a second run keeps every file byte for byte, and repairs key modes', async () => {
    const dir = fresh();
    const first = await initDevPki({ dir });
    const before = snapshot(allFiles(first));
    chmodSync(first.serverKey, 0o644);
    const second = await initDevPki({ dir });
    expect(second.report.map((r) => r.status)).toEqual(['kept', 'kept', 'kept', 'kept']);
    expect(snapshot(allFiles(second))).toEqual(before);
    expect(mode(second.serverKey)).toBe(0o600);
  });

  it('re-creates only what is missing, and adds new clients', async () => {
    const dir = fresh();
    const first = await initDevPki({ dir });
    const caBefore = readFileSync(first.caCert, 'utf8');
    const clientBefore = readFileSync(first.clientCert('demo'), 'utf8');
    rmSync(first.serverCert);
    const second = await initDevPki({ dir, clients: ['demo', 'sample-model'] });
    expect(statusOf(second.report, second.serverCert)).toBe('created');
    expect(statusOf(second.report, second.clientCert('sample-model'))).toBe('created');
    expect(statusOf(second.report, second.caCert)).toBe('kept');
    expect(readFileSync(second.caCert, 'utf8')).toBe(caBefore);
    expect(readFileSync(second.clientCert('demo'), 'utf8')).toBe(clientBefore);
    expect(
      loadTlsBundle({ cert: second.serverCert, key: second.serverKey }, { usage: 'server' }),
    ).toBeDefined();
  });

  it('replaces a server certificate that expires within 7 days, saying why', async () => {
    const dir = fresh();
    const first = await initDevPki({ dir });
    const ca = await DevCertificateAuthority.load(
      readFileSync(first.caCert, 'utf8'),
      readFileSync(first.caKey, 'utf8'),
    );
    const soon = await ca.issueServer({ notAfter: new Date(Date.now() + 3 * 24 * 3600_000) });
    writeFileSync(first.serverCert, soon.certPem);
    writeFileSync(first.serverKey, soon.keyPem);
    const second = await initDevPki({ dir });
    const entry = second.report.find((r) => r.path === second.serverCert);
    expect(entry?.status).toBe('replaced');
    expect(entry?.reason).toMatch(/expired on/);
    const cert = new X509Certificate(readFileSync(second.serverCert));
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 80 * 24 * 3600_000);
  });

  it('replaces a server certificate whose key does not match', async () => {
    const dir = fresh();
    const first = await initDevPki({ dir });
    writeFileSync(first.serverKey, readFileSync(first.clientKey('demo')));
    const second = await initDevPki({ dir });
    expect(statusOf(second.report, second.serverCert)).toBe('replaced');
    expect(loadTlsBundle({ cert: second.serverCert, key: second.serverKey }).fingerprint256).toMatch(
      /^[0-9a-f]{64}$/,
    );
  });

  it('re-issues everything when the CA is broken (old leaves are not signed by the new CA)', async () => {
    const dir = fresh();
    const first = await initDevPki({ dir });
    const before = snapshot(allFiles(first));
    writeFileSync(first.caCert, 'corrupted\n');
    const second = await initDevPki({ dir });
    expect(second.report.map((r) => r.status)).toEqual(['replaced', 'replaced', 'replaced', 'replaced']);
    expect(second.report.find((r) => r.path === second.serverCert)?.reason).toMatch(/not signed by the CA/);
    for (const f of allFiles(second)) expect(readFileSync(f, 'utf8')).not.toBe(before.get(f));
    const verify = spawnSync(
      'openssl',
      ['verify', '-crl_check', '-CAfile', second.caCert, '-CRLfile', second.crl, second.serverCert],
      { encoding: 'utf8' },
    );
    expect(verify.status).toBe(0);
  });

  it('serialises concurrent runs on one folder: one CA, everything signed by it', async () => {
    const dir = fresh();
    const [a, b] = await Promise.all([initDevPki({ dir }), initDevPki({ dir, clients: ['other'] })]);
    const statuses = [statusOf(a.report, a.caCert), statusOf(b.report, b.caCert)].sort();
    expect(statuses).toEqual(['created', 'kept']);
    const ca = new X509Certificate(readFileSync(a.caCert));
    for (const cert of [a.serverCert, a.clientCert('demo'), a.clientCert('other')]) {
      expect(new X509Certificate(readFileSync(cert)).verify(ca.publicKey)).toBe(true);
    }
  });

  it('uses the trust domain for client SPIFFE IDs', async () => {
    const pki = await initDevPki({ dir: fresh(), clients: ['svc-a'], trustDomain: 'example.test' });
    expect(loadTlsBundle({ cert: pki.clientCert('svc-a'), key: pki.clientKey('svc-a') }).spiffeId).toBe(
      'spiffe://example.test/svc-a',
    );
  });

  it.each([
    ['an unknown option', { dir: 'x', client: ['a'] }, /unknown option "client"/],
    ['a traversal client name', { dir: 'x', clients: ['../../etc/evil'] }, /"clients"/],
    ['an uppercase trust domain', { dir: 'x', trustDomain: 'Shield.Local' }, /"trustDomain"/],
    ['an empty dir', { dir: '' }, /"dir"/],
  ])('throws a TypeError for %s, before touching the disk', async (_label, opts, message) => {
    await expect(initDevPki(opts as never)).rejects.toThrow(message);
    expect(existsSync(resolve('x'))).toBe(false);
  });
});
