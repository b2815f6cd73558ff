import 'reflect-metadata';
import dns from 'node:dns';
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { helloCalls, HelloAppModule } from './fixtures/hello.app.js';
import { PeerAppModule } from './fixtures/peer.app.js';
import { call, testPki } from '../support/harness.js';
import { handshake, rawTcp, rawTls, sClient } from './support/clients.js';

const HEADERS_MS = 1000;
const MAX_BODY = 1024;

describe('the same guarantees with the Fastify adapter', () => {
  let pki: TestPki;
  let live: string;
  let https: HttpsApp;
  let mtls: HttpsApp;
  let port: number;
  let mtlsPort: number;

  beforeAll(async () => {
    pki = await testPki('fastify');
    live = join(pki.dir, 'live');
    mkdirSync(live);
    copyFileSync(pki.server.cert, join(live, 'server.pem'));
    copyFileSync(pki.server.key, join(live, 'server-key.pem'));
    https = await createHttpsApp(
      HelloAppModule,
      {
        tls: { cert: join(live, 'server.pem'), key: join(live, 'server-key.pem') },
        limits: { maxBodyBytes: MAX_BODY },
        timeouts: { headersMs: HEADERS_MS, requestMs: 2000 },
        reload: { watch: false },
        nest: { logger: false },
      },
      'fastify',
    );
    mtls = await createHttpsApp(
      PeerAppModule,
      {
        tls: { cert: pki.server.cert, key: pki.server.key },
        mtls: { mode: 'required', ca: { file: pki.ca.cert }, crl: pki.ca.crl },
        nest: { logger: false },
      },
      'fastify',
    );
    port = (await https.listen(0, '127.0.0.1')).port;
    mtlsPort = (await mtls.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await Promise.all([https?.close(), mtls?.close()]);
  });

  it('serves HTTPS with the security headers', async () => {
    const r = await call(port, { ca: pki.ca.certPem });
    expect(r.status).toBe(200);
    expect(r.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it("leaves a 404 to Nest's own handler, with our transport headers", async () => {
    const r = await call(port, { ca: pki.ca.certPem, path: '/nope' });
    expect(r.status).toBe(404);
    expect(JSON.parse(r.text)).toEqual({ statusCode: 404, message: 'Cannot GET /nope', error: 'Not Found' });
    expect(r.headers['strict-transport-security']).toBe('max-age=31536000');
  });

  it('refuses TLS 1.1 and a CBC suite', async () => {
    expect((await sClient(port, pki.ca.cert, ['-brief', '-tls1_1'])).code).not.toBe(0);
    expect(
      (await sClient(port, pki.ca.cert, ['-brief', '-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256'])).code,
    ).not.toBe(0);
  });

  it('answers plain HTTP with a 400 and closes; no handler runs', async () => {
    const before = helloCalls.count;
    const r = await rawTcp(port, 'GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect(r.closed).toBe(true);
    expect(r.data.startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    expect(r.data).toContain('"code":"ERR_HTTP_TO_HTTPS"');
    expect(helloCalls.count).toBe(before);
  });

  it('answers oversized headers with our 431', async () => {
    const r = await rawTls(port, { ca: pki.ca.certPem }, (socket) => {
      socket.write(`GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    });
    expect(r.closed).toBe(true);
    expect(r.data.startsWith('HTTP/1.1 431 ')).toBe(true);
    expect(r.data).toContain('"code":"ERR_HEADERS_TOO_LARGE"');
  });

  it('answers oversized bodies with our 413, announced or chunked', async () => {
    const before = helloCalls.count;
    const announced = await rawTls(port, { ca: pki.ca.certPem }, (socket) => {
      socket.write(
        `POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n{`,
      );
    });
    expect(announced.data.startsWith('HTTP/1.1 413 ')).toBe(true);
    expect(announced.data).toContain('"code":"ERR_BODY_TOO_LARGE"');
    const chunked = await call(port, {
      ca: pki.ca.certPem,
      method: 'POST',
      path: '/echo',
      headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      body: JSON.stringify({ text: 'x'.repeat(MAX_BODY * 2) }),
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text)).toMatchObject({ code: 'ERR_BODY_TOO_LARGE' });
    expect(helloCalls.count).toBe(before);
  });

  it('closes a slowloris connection with 408 within about a second of the headers timeout', async () => {
    const trickle = (socket: TLSSocket): void => {
      socket.write('GET /hello HTTP/1.1\r\nHost: localhost\r\n');
      let i = 0;
      const timer = setInterval(
        () => (socket.destroyed || i > 200 ? clearInterval(timer) : socket.write(`X-${i++}: a\r\n`)),
        200,
      );
      socket.on('close', () => clearInterval(timer));
    };
    const r = await rawTls(port, { ca: pki.ca.certPem }, trickle, HEADERS_MS + 2000);
    expect(r.closed).toBe(true);
    expect(r.data.startsWith('HTTP/1.1 408 ')).toBe(true);
  });

  it('requires and exposes a verified client certificate (req.raw.socket)', async () => {
    expect((await handshake(mtlsPort, { ca: pki.ca.certPem })).ok).toBe(false);
    expect(
      (
        await handshake(mtlsPort, {
          ca: pki.ca.certPem,
          cert: pki.revoked.client.certPem,
          key: pki.revoked.client.keyPem,
        })
      ).ok,
    ).toBe(false);
    const r = await call(mtlsPort, {
      ca: pki.ca.certPem,
      path: '/peer',
      client: pki.client,
    });
    expect(JSON.parse(r.text)).toMatchObject({ verified: true, fingerprint256: pki.client.fingerprint256 });
  });

  it.each([
    ['"localhost"', 'localhost'],
    ['no host (every interface)', undefined],
  ])(
    'binds one gated server for %s: Fastify builds no second server without our gates',
    async (_name, host) => {
      // Where /etc/hosts maps localhost to 127.0.0.1 and ::1 (most distributions), Fastify given
      // "localhost" starts a second server for ::1 that it builds itself. This machine maps only
      // 127.0.0.1, so the common hosts file is simulated for Fastify's lookup.
      const realLookup = dns.lookup;
      const fakeLookup = (hostname: string, options: unknown, callback?: unknown): void => {
        const cb = (typeof options === 'function' ? options : callback) as (...a: unknown[]) => void;
        const all =
          typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
        if (hostname === 'localhost' && all) {
          cb(null, [
            { address: '127.0.0.1', family: 4 },
            { address: '::1', family: 6 },
          ]);
          return;
        }
        (realLookup as (...a: unknown[]) => void)(hostname, options, callback);
      };
      dns.lookup = fakeLookup as typeof dns.lookup;
      const app = await createHttpsApp(
        HelloAppModule,
        { tls: { cert: pki.server.cert, key: pki.server.key }, nest: { logger: false } },
        'fastify',
      );
      try {
        const { port: appPort } = await app.listen(0, host);
        let answered = 0;
        for (const address of ['127.0.0.1', '::1']) {
          const r = await rawTcp(appPort, 'GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n', 5000, address);
          // Either nothing listens on that address, or it is our gated server: never an ungated one.
          if (r.error?.code === 'ECONNREFUSED' || r.error?.code === 'EADDRNOTAVAIL') continue;
          expect(r.data.startsWith('HTTP/1.1 400 Bad Request\r\n'), address).toBe(true);
          expect(r.data).toContain('ERR_HTTP_TO_HTTPS');
          answered++;
        }
        expect(answered).toBeGreaterThan(0);
      } finally {
        dns.lookup = realLookup;
        await app.close();
      }
    },
  );

  it('reloads a new certificate and refuses a broken one', async () => {
    const next = await pki.ca.authority.issueServer();
    writeFileSync(join(live, 'k.tmp'), next.keyPem);
    renameSync(join(live, 'k.tmp'), join(live, 'server-key.pem'));
    writeFileSync(join(live, 'c.tmp'), next.certPem);
    renameSync(join(live, 'c.tmp'), join(live, 'server.pem'));
    expect(https.reload()).toBe(true);
    expect((await call(port, { ca: pki.ca.certPem })).serverFingerprint).toBe(next.fingerprint256);
    writeFileSync(join(live, 'server.pem'), pki.expired.server.certPem);
    expect(https.reload()).toBe(false);
    expect((await call(port, { ca: pki.ca.certPem })).serverFingerprint).toBe(next.fingerprint256);
  });
});
