import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { HelloAppModule } from './fixtures/hello.app.js';
import { testPki } from '../support/harness.js';
import { handshake, run, sClient } from './support/clients.js';
import { issueRsaServer } from './support/rsa-server.js';

/** Suites the policy may negotiate: TLS 1.3 AEAD suites, TLS 1.2 ECDHE + GCM/ChaCha20. */
const ALLOWED_SUITE =
  /^(TLS_AES_128_GCM_SHA256|TLS_AES_256_GCM_SHA384|TLS_CHACHA20_POLY1305_SHA256|ECDHE-(ECDSA|RSA)-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305))$/;

interface Scan {
  protocols: Record<string, string>;
  suites: { protocol: string; name: string }[];
  renegotiation: string;
}

function parseSslscan(out: string): Scan {
  const protocols: Record<string, string> = {};
  for (const m of out.matchAll(/^(SSLv2|SSLv3|TLSv1\.[0-3])\s+(enabled|disabled)$/gm)) {
    protocols[m[1] ?? ''] = m[2] ?? '';
  }
  const suites = [...out.matchAll(/^(?:Preferred|Accepted)\s+(\S+)\s+\d+ bits\s+(\S+)/gm)].map((m) => ({
    protocol: m[1] ?? '',
    name: m[2] ?? '',
  }));
  const renegotiation =
    /^Session renegotiation.*$|^Secure session renegotiation.*$|^Insecure session renegotiation.*$/m.exec(
      out,
    )?.[0] ?? '';
  return { protocols, suites, renegotiation };
}

/** Renegotiate a TLS 1.2 connection from the client side; resolves with the error, if any. */
function renegotiate(port: number, ca: string): Promise<Error | null> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca,
      maxVersion: 'TLSv1.2',
    });
    socket.on('error', () => undefined);
    socket.once('secureConnect', () => {
      const ok = socket.renegotiate({ rejectUnauthorized: true }, (err) => {
        socket.destroy();
        resolve(err ?? null);
      });
      if (!ok) {
        socket.destroy();
        resolve(new Error('renegotiate() refused locally'));
      }
    });
    socket.once('close', () => resolve(new Error('closed')));
    setTimeout(() => reject(new Error('renegotiation test timed out')), 5000).unref();
  });
}

describe('TLS policy (Express, ECDSA and RSA certificates)', () => {
  let pki: TestPki;
  let ecdsa: HttpsApp;
  let rsa: HttpsApp;
  let tls13: HttpsApp;
  let control: Server;
  let ecdsaPort: number;
  let rsaPort: number;
  let tls13Port: number;
  let controlPort: number;

  beforeAll(async () => {
    pki = await testPki('tls-policy');
    const rsaFiles = await issueRsaServer(pki);
    const nest = { logger: false as const };
    ecdsa = await createHttpsApp(HelloAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      nest,
    });
    rsa = await createHttpsApp(HelloAppModule, { tls: rsaFiles, nest });
    tls13 = await createHttpsApp(HelloAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key, minVersion: 'TLSv1.3' },
      nest,
    });
    ecdsaPort = (await ecdsa.listen(0, '127.0.0.1')).port;
    rsaPort = (await rsa.listen(0, '127.0.0.1')).port;
    tls13Port = (await tls13.listen(0, '127.0.0.1')).port;
    // Negative control: Node's defaults with the same RSA certificate. Proves the checks below can fail.
    control = createServer(
      { cert: readFileSync(rsaFiles.cert), key: readFileSync(rsaFiles.key) },
      (_req, res) => res.end('ok'),
    );
    await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
    controlPort = (control.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await Promise.all([ecdsa?.close(), rsa?.close(), tls13?.close()]);
    control?.closeAllConnections();
    await new Promise((resolve) => control?.close(resolve));
  });

  it.each([
    ['TLS 1.0', '-tls1'],
    ['TLS 1.1', '-tls1_1'],
  ])('refuses %s at the handshake (openssl s_client)', async (_name, flag) => {
    for (const port of [ecdsaPort, rsaPort]) {
      const r = await sClient(port, pki.ca.cert, ['-brief', flag]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/protocol version|no protocols available|unsupported protocol/i);
    }
  });

  it.each([
    ['TLS 1.2', '-tls1_2', 'TLSv1.2'],
    ['TLS 1.3', '-tls1_3', 'TLSv1.3'],
  ])('accepts %s', async (_name, flag, version) => {
    const r = await sClient(ecdsaPort, pki.ca.cert, ['-brief', flag]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`Protocol version: ${version}`);
    expect(r.stderr).toContain('Verification: OK');
  });

  it.each([
    ['CBC with ECDHE (ECDSA key)', 'ecdsa', 'ECDHE-ECDSA-AES128-SHA256'],
    ['CBC with ECDHE, SHA-1 MAC (ECDSA key)', 'ecdsa', 'ECDHE-ECDSA-AES256-SHA'],
    ['CBC with ECDHE (RSA key)', 'rsa', 'ECDHE-RSA-AES128-SHA'],
    ['static RSA key exchange, no forward secrecy, GCM', 'rsa', 'AES128-GCM-SHA256'],
    ['static RSA key exchange, CBC', 'rsa', 'AES256-SHA256'],
  ])('refuses a TLS 1.2 %s suite', async (_name, server, suite) => {
    const port = server === 'rsa' ? rsaPort : ecdsaPort;
    const r = await sClient(port, pki.ca.cert, ['-brief', '-tls1_2', '-cipher', suite]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/handshake failure|no shared cipher/i);
  });

  it('a server with Node defaults accepts those suites (negative control)', async () => {
    for (const suite of ['ECDHE-RSA-AES128-SHA', 'AES128-GCM-SHA256', 'AES256-SHA256']) {
      const r = await sClient(controlPort, pki.ca.cert, ['-brief', '-tls1_2', '-cipher', suite]);
      expect(r.code, suite).toBe(0);
      expect(r.stderr).toContain(`Ciphersuite: ${suite}`);
    }
  });

  it('accepts ECDHE-RSA-AES128-GCM-SHA256 with an RSA key', async () => {
    const r = await sClient(rsaPort, pki.ca.cert, [
      '-brief',
      '-tls1_2',
      '-cipher',
      'ECDHE-RSA-AES128-GCM-SHA256',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Ciphersuite: ECDHE-RSA-AES128-GCM-SHA256');
  });

  it('chooses the suite in server order (honorCipherOrder)', async () => {
    const r = await sClient(ecdsaPort, pki.ca.cert, [
      '-brief',
      '-tls1_2',
      '-cipher',
      'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256');
  });

  it('offers only modern key-exchange groups', async () => {
    const good = await sClient(ecdsaPort, pki.ca.cert, ['-brief', '-tls1_3', '-groups', 'X25519']);
    expect(good.code).toBe(0);
    const old = await sClient(ecdsaPort, pki.ca.cert, ['-brief', '-tls1_3', '-groups', 'ffdhe2048']);
    expect(old.code).not.toBe(0);
  });

  it.each([
    ['ECDSA', () => ecdsaPort],
    ['RSA', () => rsaPort],
  ])('sslscan of the %s server shows only TLS 1.2/1.3 and only ECDHE+AEAD suites', async (_name, port) => {
    const r = await run('sslscan', ['--no-colour', `127.0.0.1:${port()}`], '', 60_000);
    expect(r.code).toBe(0);
    const scan = parseSslscan(r.stdout);
    expect(scan.protocols).toEqual({
      SSLv2: 'disabled',
      SSLv3: 'disabled',
      'TLSv1.0': 'disabled',
      'TLSv1.1': 'disabled',
      'TLSv1.2': 'enabled',
      'TLSv1.3': 'enabled',
    });
    expect(scan.suites.length).toBeGreaterThanOrEqual(6);
    for (const suite of scan.suites) {
      expect(['TLSv1.2', 'TLSv1.3']).toContain(suite.protocol);
      expect(suite.name).toMatch(ALLOWED_SUITE);
    }
    expect(scan.renegotiation).toBe('Session renegotiation not supported');
  });

  it('refuses client-initiated renegotiation', async () => {
    const err = await renegotiate(ecdsaPort, pki.ca.certPem);
    expect(err).not.toBeNull();
    // The connection is still usable for nothing but closing; the server never renegotiated.
    const s = await sClient(ecdsaPort, pki.ca.cert, ['-tls1_2'], 'R\n');
    expect(s.stdout + s.stderr).toMatch(/no renegotiation/i);
  });

  it('a server with Node defaults lets the client renegotiate (negative control)', async () => {
    const err = await renegotiate(controlPort, pki.ca.certPem);
    expect(err).toBeNull();
  });

  it.each([
    ['TLS 1.2', 'TLSv1.2' as const],
    ['TLS 1.3', 'TLSv1.3' as const],
  ])('resumes %s sessions', async (_name, version) => {
    const options = {
      host: '127.0.0.1',
      port: ecdsaPort,
      servername: 'localhost',
      ca: pki.ca.certPem,
      minVersion: version,
      maxVersion: version,
    };
    const session = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(options);
      s.once('session', (buf: Buffer) => {
        resolve(buf);
        s.end();
      });
      s.on('error', reject);
      s.once('secureConnect', () =>
        s.write('GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'),
      );
      s.resume();
    });
    const reused = await new Promise<boolean>((resolve, reject) => {
      const s = connect({ ...options, session });
      s.on('error', reject);
      s.once('secureConnect', () => {
        resolve(s.isSessionReused());
        s.destroy();
      });
    });
    expect(reused).toBe(true);
  });

  describe('minVersion TLSv1.3', () => {
    it('refuses TLS 1.2 and accepts TLS 1.3', async () => {
      const old = await sClient(tls13Port, pki.ca.cert, ['-brief', '-tls1_2']);
      expect(old.code).not.toBe(0);
      const r = await handshake(tls13Port, { ca: pki.ca.certPem });
      expect(r).toMatchObject({ ok: true, protocol: 'TLSv1.3' });
    });
  });
});
