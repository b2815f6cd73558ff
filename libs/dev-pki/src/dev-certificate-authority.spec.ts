import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { spiffeIdOf } from '@inference-shield/core/internal';
import {
  createTestPki,
  DevCertificateAuthority,
  TEST_CLIENT_SPIFFE_ID,
  type TestPki,
} from '@inference-shield/dev-pki';

let dir: string;
let pki: TestPki;
const servers: tls.Server[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shield-devca-'));
  pki = await createTestPki(dir);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  rmSync(dir, { recursive: true, force: true });
});

function openssl(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function text(certPath: string): string {
  return openssl('x509', '-in', certPath, '-noout', '-text').output;
}

describe('certificates checked by OpenSSL', () => {
  it.each([
    ['server', () => pki.server.cert],
    ['client', () => pki.client.cert],
    ['wrong-host server', () => pki.wrongHost.server.cert],
  ])('openssl verify accepts the %s certificate', (_label, cert) => {
    const r = openssl('verify', '-CAfile', pki.ca.cert, cert());
    expect(r.output).toContain(': OK');
    expect(r.status).toBe(0);
  });

  it('openssl verify -crl_check accepts the valid client and refuses the revoked one', () => {
    const ok = openssl(
      'verify',
      '-crl_check',
      '-CAfile',
      pki.ca.cert,
      '-CRLfile',
      pki.ca.crl,
      pki.client.cert,
    );
    expect(ok.status).toBe(0);
    const revoked = openssl(
      'verify',
      '-crl_check',
      '-CAfile',
      pki.ca.cert,
      '-CRLfile',
      pki.ca.crl,
      pki.revoked.client.cert,
    );
    expect(revoked.status).not.toBe(0);
    expect(revoked.output).toContain('certificate revoked');
  });

  it.each([
    ['expired', () => pki.expired.server.cert, 'certificate has expired'],
    ['not yet valid', () => pki.notYetValid.server.cert, 'certificate is not yet valid'],
    ['other CA', () => pki.otherCa.server.cert, 'unable to get local issuer certificate'],
  ])('openssl verify refuses the %s server certificate', (_label, cert, reason) => {
    const r = openssl('verify', '-CAfile', pki.ca.cert, cert());
    expect(r.status).not.toBe(0);
    expect(r.output).toContain(reason);
  });

  it('openssl verify -purpose refuses the wrong-EKU certificates', () => {
    const server = openssl(
      'verify',
      '-purpose',
      'sslserver',
      '-CAfile',
      pki.ca.cert,
      pki.wrongEku.server.cert,
    );
    expect(server.status).not.toBe(0);
    const client = openssl(
      'verify',
      '-purpose',
      'sslclient',
      '-CAfile',
      pki.ca.cert,
      pki.wrongEku.client.cert,
    );
    expect(client.status).not.toBe(0);
    expect(openssl('verify', '-purpose', 'sslclient', '-CAfile', pki.ca.cert, pki.client.cert).status).toBe(
      0,
    );
  });

  it('makes a CA with critical basicConstraints and keyCertSign + cRLSign', () => {
    const t = text(pki.ca.cert);
    expect(t).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(t).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(t).toContain('Subject Key Identifier');
    expect(t).toContain('Public-Key: (256 bit)');
    expect(t).toContain('ecdsa-with-SHA256');
  });

  it('gives the server certificate serverAuth, typed DNS and IP SANs, SKI and the CA key id as AKI', () => {
    const t = text(pki.server.cert);
    expect(t).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication\n/);
    expect(t).toContain('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(t).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    const ski = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(text(pki.ca.cert))?.[1];
    expect(ski).toBeDefined();
    expect(t).toMatch(new RegExp(`Authority Key Identifier:\\s+(keyid:)?${ski}`));
  });

  it('gives the client certificate clientAuth and its SPIFFE ID as the only URI SAN', () => {
    const t = text(pki.client.cert);
    expect(t).toMatch(/Extended Key Usage:\s+TLS Web Client Authentication\n/);
    expect(t).toContain(`URI:${TEST_CLIENT_SPIFFE_ID}`);
    expect(spiffeIdOf(new X509Certificate(pki.client.certPem))).toBe(TEST_CLIENT_SPIFFE_ID);
  });

  it('backdates leaves by a minute and gives them 90 days', () => {
    const cert = new X509Certificate(pki.server.certPem);
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    expect(from).toBeLessThan(Date.now() - 30_000);
    expect(Math.round((to - from) / 86_400_000)).toBe(90);
  });
});

/** Start a TLS server on loopback that answers every accepted connection with its verdict on the client. */
async function startServer(options: tls.TlsOptions, host = '127.0.0.1'): Promise<number> {
  const server = tls.createServer({ minVersion: 'TLSv1.2', ...options }, (socket) =>
    socket.end(socket.authorized ? 'authorized' : `unauthorized:${String(socket.authorizationError)}`),
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

/** Connect and return what the server answered, or `refused` when it closed without answering. */
async function exchange(port: number, options: tls.ConnectionOptions): Promise<string> {
  return new Promise<string>((resolve) => {
    const socket = tls.connect({ port, host: '127.0.0.1', ...options });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', () => resolve(data || 'refused'));
    socket.on('close', () => resolve(data || 'refused'));
  });
}

describe('certificates in real TLS handshakes', () => {
  it.each([
    ['localhost', '127.0.0.1', { servername: 'localhost' }],
    ['127.0.0.1', '127.0.0.1', {}],
    ['::1', '::1', {}],
  ])('a client trusting only the dev CA connects to %s, hostname checked', async (_label, host, extra) => {
    const port = await startServer({ cert: pki.server.certPem, key: pki.server.keyPem }, host);
    // Node checks the certificate against `servername`, or `host` when that is an IP address.
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const socket = tls.connect({ port, host, ca: pki.ca.certPem, ...extra });
      socket.on('secureConnect', () => {
        resolve(socket.authorized);
        socket.destroy();
      });
      socket.on('error', reject);
    });
    expect(authorized).toBe(true);
  });

  it('a client refuses the wrong-host certificate for localhost', async () => {
    const port = await startServer({ cert: pki.wrongHost.server.certPem, key: pki.wrongHost.server.keyPem });
    const err = await new Promise<string>((resolve) => {
      const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca.certPem });
      socket.on('secureConnect', () => resolve('connected'));
      socket.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
    });
    expect(err).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  describe('mutual TLS with the CA and its CRL', () => {
    // `strict` is the real set-up; `diagnostic` asks for the same checks without enforcing them,
    // so each refusal can be shown to happen for the expected reason.
    let strict: number;
    let diagnostic: number;
    beforeAll(async () => {
      const options = {
        cert: pki.server.certPem,
        key: pki.server.keyPem,
        ca: pki.ca.certPem,
        crl: pki.ca.crlPem,
        requestCert: true,
      };
      strict = await startServer({ ...options, rejectUnauthorized: true });
      diagnostic = await startServer({ ...options, rejectUnauthorized: false });
    });
    const client = (pair: { certPem: string; keyPem: string } | undefined): tls.ConnectionOptions => ({
      ca: pki.ca.certPem,
      servername: 'localhost',
      ...(pair ? { cert: pair.certPem, key: pair.keyPem } : {}),
    });

    it('accepts the valid client', async () => {
      expect(await exchange(strict, client(pki.client))).toBe('authorized');
    });

    it.each([
      ['no certificate', () => undefined, 'UNABLE_TO_GET_ISSUER_CERT'],
      ['a certificate of another CA', () => pki.otherCa.client, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['an expired certificate', () => pki.expired.client, 'CERT_HAS_EXPIRED'],
      ['a not yet valid certificate', () => pki.notYetValid.client, 'CERT_NOT_YET_VALID'],
      ['a revoked certificate', () => pki.revoked.client, 'CERT_REVOKED'],
      ['a certificate without clientAuth', () => pki.wrongEku.client, 'INVALID_PURPOSE'],
    ])('refuses %s', async (_label, pair, reason) => {
      expect(await exchange(strict, client(pair()))).toBe('refused');
      expect(await exchange(diagnostic, client(pair()))).toBe(`unauthorized:${reason}`);
    });
  });
});

describe('DevCertificateAuthority API', () => {
  it('load() gives back a CA that issues certificates the original CA verifies', async () => {
    const loaded = await DevCertificateAuthority.load(pki.ca.certPem, pki.ca.keyPem);
    expect(loaded.certPem).toBe(pki.ca.certPem);
    const issued = await loaded.issueClient({ spiffeId: 'spiffe://shield.local/loaded' });
    const path = join(dir, 'loaded-client.pem');
    writeFileSync(path, issued.certPem);
    expect(openssl('verify', '-CAfile', pki.ca.cert, path).status).toBe(0);
  });

  it.each([
    ['a leaf certificate', () => [pki.server.certPem, pki.server.keyPem], /not a CA/],
    ['a key of another CA', () => [pki.ca.certPem, pki.otherCa.ca.keyPem], /does not match/],
    ['garbage', () => ['nope', 'nope'], /cannot be parsed/],
  ])('load() refuses %s', async (_label, args, message) => {
    const [cert, key] = args();
    await expect(DevCertificateAuthority.load(cert ?? '', key ?? '')).rejects.toThrow(message);
  });

  it.each([
    ['an invalid SPIFFE ID', { spiffeId: 'spiffe://Shield.Local/x' }, /"spiffeId"/],
    ['an unknown option', { spifeId: 'spiffe://shield.local/x' }, /unknown option "spifeId"/],
    ['an unknown EKU', { extendedKeyUsage: ['codeSigning'] }, /"extendedKeyUsage"/],
    [
      'notAfter before notBefore',
      { notBefore: new Date(), notAfter: new Date(Date.now() - 1000) },
      /"notAfter"/,
    ],
  ])('issueClient() throws a TypeError for %s', async (_label, opts, message) => {
    await expect(pki.ca.authority.issueClient(opts as never)).rejects.toThrow(message);
  });

  it('revoke() takes serials in any case and with colons', async () => {
    const ca = await DevCertificateAuthority.create();
    const a = await ca.issueClient({});
    ca.revoke(a.serialNumber.toUpperCase().replace(/(..)(?!$)/g, '$1:'));
    const crlPath = join(dir, 'revoke-case.crl.pem');
    const caPath = join(dir, 'revoke-case-ca.pem');
    const certPath = join(dir, 'revoke-case.pem');
    writeFileSync(crlPath, await ca.crlPem());
    writeFileSync(caPath, ca.certPem);
    writeFileSync(certPath, a.certPem);
    const r = openssl('verify', '-crl_check', '-CAfile', caPath, '-CRLfile', crlPath, certPath);
    expect(r.output).toContain('certificate revoked');
    expect(() => ca.revoke('not hex')).toThrow(TypeError);
  });
});
