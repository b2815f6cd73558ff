import 'reflect-metadata';
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { helloCalls, HelloAppModule } from './fixtures/hello.app.js';
import { call, startApp, testPki } from '../support/harness.js';
import { rawTcp, rawTls } from './support/clients.js';

describe('plain HTTP and stray bytes on the HTTPS port', () => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    pki = await testPki('plaintext');
    https = await createHttpsApp(HelloAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      timeouts: { handshakeMs: 300 },
      nest: { logger: false },
    });
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
  });

  it.each([
    ['a GET', 'GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    [
      'a POST with a body',
      'POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"b"}\r\n',
    ],
    ['an HTTP/1.0 request', 'GET /hello HTTP/1.0\r\n\r\n'],
    ['a lowercase method', 'get /hello HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    ['an absolute-form proxy request', 'GET http://localhost/hello HTTP/1.1\r\nHost: localhost\r\n\r\n'],
  ])(
    'answers %s with a short 400 telling to use HTTPS, then closes; no handler runs',
    async (_name, request) => {
      const before = helloCalls.count;
      const r = await rawTcp(port, request);
      expect(r.closed).toBe(true);
      const [head = '', body = ''] = r.data.split('\r\n\r\n');
      expect(head.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
      expect(head).toMatch(/\r\nConnection: close(\r\n|$)/);
      expect(JSON.parse(body)).toEqual({
        code: 'ERR_HTTP_TO_HTTPS',
        message: 'This port speaks HTTPS only. Use https://.',
      });
      expect(r.data.length).toBeLessThan(300);
      // HSTS over plaintext is ignored by browsers (RFC 6797 §8.1); it is not sent there.
      expect(head).not.toMatch(/Strict-Transport-Security/i);
      expect(helloCalls.count).toBe(before);
    },
  );

  it.each([
    ['an SSLv2-style hello (high bit set)', Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02])],
    ['a NUL byte', Buffer.from([0x00, 0x01, 0x02])],
    ['a TLS alert record', Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])],
  ])('closes a connection that starts with %s, answering nothing', async (_name, bytes) => {
    const r = await rawTcp(port, bytes);
    expect(r.closed).toBe(true);
    expect(r.data).toBe('');
  });

  it('closes a connection that never sends a byte after the handshake timeout', async () => {
    const r = await rawTcp(port, undefined, 5000);
    expect(r.closed).toBe(true);
    expect(r.data).toBe('');
  });

  it('closes a connection whose ClientHello never completes', async () => {
    // The first byte of a handshake record, then silence: TLS's own handshake timer ends it.
    const r = await rawTcp(port, Buffer.from([0x16, 0x03, 0x01]), 5000);
    expect(r.closed).toBe(true);
  });

  it('keeps serving HTTPS after all of that', async () => {
    const before = helloCalls.count;
    const r = await call(port, { ca: pki.ca.certPem });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ ok: true });
    expect(helloCalls.count).toBe(before + 1);
  });
});

describe('the handshake deadline counts from accept', () => {
  const HANDSHAKE_MS = 1000;
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    ({ pki, https, port } = await startApp(HelloAppModule, {
      timeouts: { handshakeMs: HANDSHAKE_MS },
    }));
  });

  afterAll(async () => {
    await https?.close();
  });

  it('closes a connection that sends one handshake byte just before the deadline, at the deadline', async () => {
    // Before: the first byte stopped the accept timer and TLS started a full one of its own, so
    // this connection lived nearly twice handshakeMs.
    const started = Date.now();
    const socket = tcpConnect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolve) =>
      socket.once('close', () => resolve(Date.now() - started)),
    );
    setTimeout(() => socket.destroyed || socket.write(Buffer.from([0x16])), HANDSHAKE_MS - 150);
    const lived = await closed;
    expect(lived).toBeGreaterThanOrEqual(HANDSHAKE_MS - 200);
    expect(lived).toBeLessThan(HANDSHAKE_MS + 600);
  });

  it('never cuts a connection whose handshake completed, however long it lives', async () => {
    const GET = 'GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const r = await rawTls(
      port,
      { ca: pki.ca.certPem },
      (socket) => {
        socket.write(GET);
        setTimeout(() => socket.destroyed || socket.write(GET), HANDSHAKE_MS + 300);
      },
      HANDSHAKE_MS + 1500,
    );
    expect(r.data.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
  });
});
