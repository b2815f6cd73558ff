import 'reflect-metadata';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import type { TestPki } from '@inference-shield/dev-pki';
import { helloCalls, HelloAppModule } from './fixtures/hello.app.js';
import { testPki } from '../support/harness.js';
import { rawTls } from './support/clients.js';

const MAX_BODY = 256 * 1024;
/** What the server may read past the limit: one more read of the socket. */
const SLACK = 64 * 1024;
const PIECE = Buffer.alloc(16 * 1024, 0x61);

/** Bytes the server read on each raw TCP connection, recorded when the connection closes. */
function recordBytesRead(https: HttpsApp): number[] {
  const read: number[] = [];
  const server = https.app.getHttpServer() as { on(e: 'connection', l: (s: Socket) => void): void };
  server.on('connection', (socket) => socket.once('close', () => read.push(socket.bytesRead)));
  return read;
}

/**
 * Send a chunked body of `total` bytes (Infinity: never ending) as fast as the server takes it,
 * until the server answers and closes.
 */
function streamChunked(head: string, total: number): (socket: TLSSocket) => void {
  return (socket) => {
    socket.write(head);
    let sent = 0;
    const pump = (): void => {
      while (!socket.destroyed && sent < total) {
        const piece = total - sent < PIECE.length ? PIECE.subarray(0, total - sent) : PIECE;
        sent += piece.length;
        socket.write(`${piece.length.toString(16)}\r\n`);
        socket.write(piece);
        const ok = socket.write('\r\n');
        if (!ok) {
          socket.once('drain', pump);
          return;
        }
      }
      if (!socket.destroyed && sent >= total) socket.write('0\r\n\r\n');
    };
    socket.on('error', () => undefined);
    pump();
  };
}

function head(path: string, type: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n`;
}

describe.each(['express', 'fastify'] as const)('chunked bodies past the limit (%s)', (adapter) => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;
  let bytesRead: number[];

  beforeAll(async () => {
    pki = await testPki(`body-limit-${adapter}`);
    https = await createHttpsApp(
      HelloAppModule,
      {
        tls: { cert: pki.server.cert, key: pki.server.key },
        limits: { maxBodyBytes: MAX_BODY },
        reload: { watch: false, sighup: false },
        nest: { logger: false },
      },
      adapter,
    );
    bytesRead = recordBytesRead(https);
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
  });

  /** The last connection's bytes read, once the server has closed it. */
  async function lastRead(): Promise<number> {
    const deadline = Date.now() + 3000;
    while (bytesRead.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const n = bytesRead.pop();
    bytesRead.length = 0;
    return n ?? Number.POSITIVE_INFINITY;
  }

  it.each([
    ['an endless JSON stream', '/echo', 'application/json', Number.POSITIVE_INFINITY],
    ['a 50 MiB JSON body', '/echo', 'application/json', 50 * 1024 * 1024],
    ['an endless stream of a type no parser reads', '/echo', 'text/plain', Number.POSITIVE_INFINITY],
    [
      'an endless stream to a route that reads no body',
      '/hello',
      'application/json',
      Number.POSITIVE_INFINITY,
    ],
  ])(
    '%s gets 413 and is closed, the server having read at most limit + 64 KiB',
    async (_n, path, type, total) => {
      bytesRead.length = 0;
      const before = helloCalls.count;
      const started = Date.now();
      const r = await rawTls(port, { ca: pki.ca.certPem }, streamChunked(head(path, type), total), 10_000);
      expect(r.closed).toBe(true);
      expect(Date.now() - started).toBeLessThan(5000);
      const read = await lastRead();
      expect(read).toBeLessThanOrEqual(MAX_BODY + SLACK);
      if (type === 'text/plain' && adapter === 'express') {
        // No parser reads it: the route answers at once, and the body Node then reads off the wire
        // to reach the next request is counted too; past the limit the connection is closed.
        expect(r.data.startsWith('HTTP/1.1 201 ')).toBe(true);
        return;
      }
      expect(r.data.startsWith('HTTP/1.1 413 ')).toBe(true);
      expect(r.data).toContain('"code":"ERR_BODY_TOO_LARGE"');
      expect(r.data.toLowerCase()).toContain('connection: close');
      expect(r.data).toContain('Strict-Transport-Security: max-age=31536000');
      if (path === '/echo') expect(helloCalls.count).toBe(before);
    },
  );
});
