import 'reflect-metadata';
import type { Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import type { HttpsApp } from '@inference-shield/https';
import { BigAppModule } from './fixtures/big.app.js';
import { startApp } from '../support/harness.js';
import { rawTls } from './support/clients.js';

const STALL_MS = 1000;

describe('timeouts.sendStallMs: a client that stops reading', () => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    ({ pki, https, port } = await startApp(BigAppModule, {
      timeouts: { sendStallMs: STALL_MS, headersMs: 2000, requestMs: 5000, keepAliveMs: 2000 },
    }));
  });

  afterAll(async () => {
    await https?.close();
  });

  it('loses its connection once its answer has waited sendStallMs, and frees the slot', async () => {
    const server = https.app.getHttpServer() as Server;
    const open = (): Promise<number> =>
      new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem });
    let received = 0;
    const ended = new Promise<string>((resolve) => {
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      socket.on('close', () => resolve('closed'));
    });
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write('GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n');
    // Read nothing: TLS stops pulling from TCP, the windows fill, the server's send stalls.
    socket.pause();
    try {
      expect(await open()).toBe(1);
      // The server lets go within sendStallMs (plus a little), though the client reads nothing.
      let n = 1;
      for (let waited = 0; n > 0 && waited < STALL_MS + 5000; waited += 100) {
        await new Promise((r) => setTimeout(r, 100));
        n = await open();
      }
      expect(n).toBe(0);
      // With a reset, not a close: the client learns it as soon as it reads again, and the
      // 8 MiB answer is not delivered after the fact.
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.resume();
      expect(await ended).toMatch(/ECONNRESET|closed/);
      expect(received).toBeLessThan(8 * 1024 * 1024);
    } finally {
      socket.destroy();
    }
  });

  it('leaves alone a handler that works longer than sendStallMs before answering', async () => {
    const think = STALL_MS + 700;
    const r = await rawTls(
      port,
      { ca: pki.ca.certPem },
      (socket) => void socket.write(`GET /think?ms=${think} HTTP/1.1\r\nHost: localhost\r\n\r\n`),
      think + 3000,
    );
    expect(r.data).toContain(`{"thought":${think}}`);
  });

  it('still closes an idle kept-alive connection (no request in flight) at its timeout', async () => {
    const r = await rawTls(
      port,
      { ca: pki.ca.certPem },
      (socket) => void socket.write('GET /think?ms=1 HTTP/1.1\r\nHost: localhost\r\n\r\n'),
      15_000,
    );
    expect(r.data).toContain('{"thought":1}');
    expect(r.closed).toBe(true);
  });
});
