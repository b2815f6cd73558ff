import 'reflect-metadata';
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import type { ShieldError } from '@inference-shield/core';
import { createHttpsApp, type HttpsApp, type HttpsCertificateInfo } from '@inference-shield/https';
import { HelloAppModule } from './fixtures/hello.app.js';
import { call, testPki } from '../support/harness.js';
import { handshake } from './support/clients.js';

/** Replace a file the way cert-manager and editors do: write aside, then rename over it. */
function replaceFile(path: string, data: string): void {
  writeFileSync(`${path}.tmp`, data, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** One keep-alive GET on an open TLS connection; resolves with the first chunk of the answer. */
async function exchange(socket: TLSSocket): Promise<string> {
  socket.write('GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return chunk.toString('latin1');
}

/** Collects reload reports and lets a test wait for the next one. */
class Reports {
  readonly reloads: HttpsCertificateInfo[] = [];
  readonly errors: ShieldError[] = [];
  private waiters: (() => void)[] = [];

  onReload = (info: HttpsCertificateInfo): void => {
    this.reloads.push(info);
    this.wake();
  };

  onReloadError = (err: ShieldError): void => {
    this.errors.push(err);
    this.wake();
  };

  /** Resolves at the next report; rejects after `ms` (a missed reload must fail, not hang). */
  next(ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reload report')), ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

describe('certificate rotation without restart', () => {
  let pki: TestPki;
  let live: string;
  let https: HttpsApp;
  let port: number;
  const reports = new Reports();

  beforeAll(async () => {
    pki = await testPki('rotation');
    live = join(pki.dir, 'live');
    mkdirSync(live);
    copyFileSync(pki.server.cert, join(live, 'server.pem'));
    copyFileSync(pki.server.key, join(live, 'server-key.pem'));
    https = await createHttpsApp(HelloAppModule, {
      tls: { cert: join(live, 'server.pem'), key: join(live, 'server-key.pem') },
      reload: { debounceMs: 50, onReload: reports.onReload, onReloadError: reports.onReloadError },
      nest: { logger: false },
    });
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
  });

  it('serves a new certificate to new connections while a client loop sees zero failures', async () => {
    const oldFingerprint = pki.server.fingerprint256;
    const next = await pki.ca.authority.issueServer();
    // A keep-alive connection opened before the rotation must survive it, still on the old certificate.
    const open = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem });
    await once(open, 'secureConnect');
    expect(await exchange(open)).toMatch(/^HTTP\/1\.1 200 /);

    const seen: string[] = [];
    let failures = 0;
    let stop = false;
    const loop = (async () => {
      // Bounded: at most 2000 requests, each on a new connection (agent: false).
      for (let i = 0; i < 2000 && !stop; i++) {
        try {
          const r = await call(port, { ca: pki.ca.certPem });
          if (r.status !== 200) failures++;
          seen.push(r.serverFingerprint);
        } catch {
          failures++;
        }
      }
    })();

    while (seen.length < 20) await new Promise((r) => setTimeout(r, 10));
    const reloaded = reports.next();
    replaceFile(join(live, 'server-key.pem'), next.keyPem);
    replaceFile(join(live, 'server.pem'), next.certPem);
    await reloaded;
    // Give the loop time to make new connections on the new certificate.
    const after = seen.length;
    while (seen.length < after + 20) await new Promise((r) => setTimeout(r, 10));
    stop = true;
    await loop;

    expect(failures).toBe(0);
    expect(seen).toContain(oldFingerprint);
    expect(seen.at(-1)).toBe(next.fingerprint256);
    expect(new Set(seen)).toEqual(new Set([oldFingerprint, next.fingerprint256]));
    expect(https.certificate().fingerprint256).toBe(next.fingerprint256);
    expect(reports.reloads.at(-1)?.fingerprint256).toBe(next.fingerprint256);

    expect(open.destroyed).toBe(false);
    expect(await exchange(open)).toMatch(/^HTTP\/1\.1 200 /);
    expect(open.getPeerX509Certificate()?.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(
      oldFingerprint,
    );
    open.destroy();
  });

  it('refuses a broken replacement, keeps the previous certificate and reports the failure', async () => {
    const inUse = https.certificate().fingerprint256;
    const cases: [string, () => void, string][] = [
      [
        'a file that is not a certificate',
        () => replaceFile(join(live, 'server.pem'), 'garbage\n'),
        'ERR_CERT_INVALID',
      ],
      [
        'an expired certificate',
        () => {
          replaceFile(join(live, 'server-key.pem'), pki.expired.server.keyPem);
          replaceFile(join(live, 'server.pem'), pki.expired.server.certPem);
        },
        'ERR_CERT_EXPIRED',
      ],
      [
        'a key of another certificate',
        () => {
          replaceFile(join(live, 'server-key.pem'), pki.client.keyPem);
          replaceFile(join(live, 'server.pem'), pki.server.certPem);
        },
        'ERR_CERT_KEY_MISMATCH',
      ],
    ];
    for (const [name, breakIt, code] of cases) {
      const reported = reports.next();
      breakIt();
      await reported;
      expect(reports.errors.at(-1)?.code, name).toBe(code);
      expect(reports.errors.at(-1)?.message).toContain(live);
      const r = await call(port, { ca: pki.ca.certPem });
      expect(r.status, name).toBe(200);
      expect(r.serverFingerprint, name).toBe(inUse);
    }
    expect(https.reload()).toBe(false);
  });

  it('reloads on demand (reload() and SIGHUP) when file watching is off', async () => {
    const dir = join(pki.dir, 'manual');
    mkdirSync(dir);
    copyFileSync(pki.server.cert, join(dir, 'server.pem'));
    copyFileSync(pki.server.key, join(dir, 'server-key.pem'));
    const sighupListeners = process.listenerCount('SIGHUP');
    const manualReports = new Reports();
    const manual = await createHttpsApp(HelloAppModule, {
      tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') },
      reload: { watch: false, onReload: manualReports.onReload },
      nest: { logger: false },
    });
    try {
      const manualPort = (await manual.listen(0, '127.0.0.1')).port;
      const next = await pki.ca.authority.issueServer();
      replaceFile(join(dir, 'server-key.pem'), next.keyPem);
      replaceFile(join(dir, 'server.pem'), next.certPem);
      // Not watched: nothing changes by itself.
      await new Promise((r) => setTimeout(r, 300));
      expect((await call(manualPort, { ca: pki.ca.certPem })).serverFingerprint).toBe(
        pki.server.fingerprint256,
      );
      // Vitest runs specs in worker threads, where OS signals are not delivered: emit the event
      // the process would get from `kill -HUP`.
      const reloaded = manualReports.next();
      process.emit('SIGHUP', 'SIGHUP');
      await reloaded;
      expect((await call(manualPort, { ca: pki.ca.certPem })).serverFingerprint).toBe(next.fingerprint256);
      expect(manual.reload()).toBe(true);
    } finally {
      await manual.close();
    }
    // One shared process listener: the second app added none, and closing it removed none.
    expect(process.listenerCount('SIGHUP')).toBe(sighupListeners);
  });

  it('reloads a new CRL: a client revoked after start is refused on its next connection', async () => {
    const dir = join(pki.dir, 'mtls');
    mkdirSync(dir);
    copyFileSync(pki.ca.crl, join(dir, 'ca.crl.pem'));
    const crlReports = new Reports();
    const app = await createHttpsApp(HelloAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      mtls: { mode: 'required', ca: { file: pki.ca.cert }, crl: join(dir, 'ca.crl.pem') },
      reload: { debounceMs: 50, onReload: crlReports.onReload, onReloadError: crlReports.onReloadError },
      nest: { logger: false },
    });
    try {
      const appPort = (await app.listen(0, '127.0.0.1')).port;
      const client = { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem };
      expect((await handshake(appPort, client)).ok).toBe(true);
      pki.ca.authority.revoke(pki.client.serialNumber);
      const reloaded = crlReports.next();
      replaceFile(join(dir, 'ca.crl.pem'), await pki.ca.authority.crlPem());
      await reloaded;
      expect(crlReports.errors).toEqual([]);
      expect((await handshake(appPort, client)).ok).toBe(false);
    } finally {
      await app.close();
    }
  });
});
