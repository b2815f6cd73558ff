import 'reflect-metadata';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { helloCalls, HelloAppModule } from './fixtures/hello.app.js';
import { call, testPki } from '../support/harness.js';
import { rawTls, type RawResult } from './support/clients.js';

const HEADERS_MS = 1000;
const REQUEST_MS = 2000;
const MAX_BODY = 1024;

/** Split a raw HTTP/1.1 answer into status line, header map and body. */
function parseRaw(r: RawResult): { status: number; headers: Record<string, string>; body: string } {
  const [head = '', ...rest] = r.data.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

/** Send the request head a header line at a time, every 200 ms, without ever finishing it. */
function trickleHeaders(socket: TLSSocket): void {
  socket.write('GET /hello HTTP/1.1\r\nHost: localhost\r\n');
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i > 200) {
      clearInterval(timer);
      return;
    }
    socket.write(`X-Slow-${i++}: a\r\n`);
  }, 200);
  socket.on('close', () => clearInterval(timer));
}

describe('limits and timeouts (Express)', () => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;
  let control: Server;
  let controlPort: number;

  beforeAll(async () => {
    pki = await testPki('limits');
    https = await createHttpsApp(HelloAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      limits: { maxBodyBytes: MAX_BODY },
      timeouts: { headersMs: HEADERS_MS, requestMs: REQUEST_MS },
      headers: { hstsMaxAgeSeconds: 86_400, hstsIncludeSubDomains: true },
      nest: { logger: false },
    });
    port = (await https.listen(0, '127.0.0.1')).port;
    // Negative control: the same headers timeout with Node's default 30 s checking interval.
    control = createServer(
      {
        cert: pki.server.certPem,
        key: pki.server.keyPem,
        headersTimeout: HEADERS_MS,
        requestTimeout: REQUEST_MS,
      },
      (_q, s) => s.end('ok'),
    );
    await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
    controlPort = (control.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await https?.close();
    control?.closeAllConnections();
    await new Promise((resolve) => control?.close(resolve));
  });

  it('closes a slowloris connection with 408 within about a second of the headers timeout', async () => {
    // The deadline is the headers timeout plus 2 s of slack for a busy machine: Node's default
    // 30 s checking interval (see the control below) could never meet it.
    const r = await rawTls(port, { ca: pki.ca.certPem }, trickleHeaders, HEADERS_MS + 2000);
    expect(r.closed).toBe(true);
    const answer = parseRaw(r);
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'ERR_REQUEST_TIMEOUT' });
    expect(answer.headers.connection).toBe('close');
  });

  it('a server with Node defaults keeps that slowloris connection open (negative control)', async () => {
    const r = await rawTls(controlPort, { ca: pki.ca.certPem }, trickleHeaders, HEADERS_MS + 2000);
    expect(r.closed).toBe(false);
  });

  it('closes a request whose body trickles past the request timeout with 408', async () => {
    const r = await rawTls(
      port,
      { ca: pki.ca.certPem },
      (socket) => {
        socket.write(
          'POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
        );
        const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(' ')), 200);
        socket.on('close', () => clearInterval(timer));
      },
      REQUEST_MS + 3000,
    );
    expect(r.closed).toBe(true);
    expect(parseRaw(r).status).toBe(408);
  });

  it('answers oversized headers with a short 431 and closes', async () => {
    const before = helloCalls.count;
    const r = await rawTls(port, { ca: pki.ca.certPem }, (socket) => {
      socket.write(`GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    });
    expect(r.closed).toBe(true);
    const answer = parseRaw(r);
    expect(answer.status).toBe(431);
    expect(JSON.parse(answer.body)).toEqual({
      code: 'ERR_HEADERS_TOO_LARGE',
      message: 'The request headers are too large.',
    });
    expect(answer.headers['strict-transport-security']).toBe('max-age=86400; includeSubDomains');
    expect(r.data.length).toBeLessThan(500);
    expect(helloCalls.count).toBe(before);
  });

  it('accepts headers just under the limit', async () => {
    const r = await call(port, { ca: pki.ca.certPem, headers: { 'X-Big': 'a'.repeat(12_000) } });
    expect(r.status).toBe(200);
  });

  it('answers an announced oversized body with 413 before any handler runs', async () => {
    const before = helloCalls.count;
    const r = await rawTls(port, { ca: pki.ca.certPem }, (socket) => {
      socket.write(
        `POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n{"a":`,
      );
    });
    const answer = parseRaw(r);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual({
      code: 'ERR_BODY_TOO_LARGE',
      message: 'The request body is too large.',
    });
    expect(answer.headers.connection).toBe('close');
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
    expect(r.closed).toBe(true);
    expect(helloCalls.count).toBe(before);
  });

  it('answers an oversized chunked body with 413 from the body parser, mapped by our filter', async () => {
    const before = helloCalls.count;
    const body = JSON.stringify({ text: 'x'.repeat(MAX_BODY * 2) });
    const r = await call(port, {
      ca: pki.ca.certPem,
      method: 'POST',
      path: '/echo',
      headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      body,
    });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text)).toEqual({
      code: 'ERR_BODY_TOO_LARGE',
      message: 'The request body is too large.',
    });
    expect(helloCalls.count).toBe(before);
  });

  it('does not tell an oversized Expect: 100-continue request to continue', async () => {
    const r = await rawTls(port, { ca: pki.ca.certPem }, (socket) => {
      socket.write(
        `POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY * 10}\r\nExpect: 100-continue\r\n\r\n`,
      );
    });
    expect(r.data.startsWith('HTTP/1.1 413 ')).toBe(true);
    expect(r.data).not.toContain('100 Continue');
  });

  it('continues an Expect: 100-continue request that fits', async () => {
    const r = await call(port, {
      ca: pki.ca.certPem,
      method: 'POST',
      path: '/echo',
      headers: { 'Content-Type': 'application/json', Expect: '100-continue' },
      body: '{"a":1}',
    });
    expect(r.status).toBe(201);
    expect(JSON.parse(r.text)).toEqual({ a: 1 });
  });

  it('echoes a body within the limit', async () => {
    const r = await call(port, {
      ca: pki.ca.certPem,
      method: 'POST',
      path: '/echo',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ text: 'x'.repeat(MAX_BODY - 20) }),
    });
    expect(r.status).toBe(201);
  });

  describe('security headers', () => {
    it.each([
      ['a 200', '/hello', 200, 'no-store'],
      ['a 404 (no route), answered by Nest as the host app would be', '/nope', 404, 'no-store'],
      ['a route that sets its own Cache-Control', '/cacheable', 200, 'public, max-age=60'],
    ])('are on %s', async (_name, path, status, cacheControl) => {
      const r = await call(port, { ca: pki.ca.certPem, path });
      expect(r.status).toBe(status);
      expect(r.headers['strict-transport-security']).toBe('max-age=86400; includeSubDomains');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['cache-control']).toBe(cacheControl);
      expect(r.headers['x-powered-by']).toBeUndefined();
      // No-store answers are never revalidated: Express's ETag (a hash of every body) is off.
      if (cacheControl === 'no-store') expect(r.headers['etag']).toBeUndefined();
      // A good guest: Nest's own 404 body, unchanged; only our transport headers are added.
      if (status === 404) {
        expect(JSON.parse(r.text)).toEqual({
          statusCode: 404,
          message: 'Cannot GET /nope',
          error: 'Not Found',
        });
      }
    });
  });
});
