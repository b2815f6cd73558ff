import 'reflect-metadata';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsAdapterChoice, type HttpsApp } from '@inference-shield/https';
import { testPki } from '../../support/harness.js';
import { rawTls } from '../../https/support/clients.js';
import { AttackAppModule } from './attack.app.js';
import { okAnswers, rawTlsUntil } from './attack-clients.js';

// THREATS, "slowloris": Node's keep-alive timeout is an idle timer that every received byte
// restarts, and llhttp skips CR/LF before a request line (RFC 9112 §2.2) without starting the
// headers timer. So after one request, "\r\n" every 200 ms held the connection open forever, past
// both keepAliveMs and headersMs, with either adapter.
const KEEP_ALIVE_MS = 500;
const HEADERS_MS = 300;
const CHECK_MS = 100;
/** keepAliveMs + headersMs + one checking interval: the most an idle kept-alive connection gets. */
const IDLE_LIMIT_MS = KEEP_ALIVE_MS + HEADERS_MS + CHECK_MS;
/** Generous slack for a busy machine; the unfixed server kept the connection for ever. */
const DEADLINE_MS = IDLE_LIMIT_MS + 2500;
const GET = 'GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n';

/** A request the app answers after `ms`, with `{"waited":ms}`. */
const slowGet = (ms: number): string => `GET /slow?ms=${ms} HTTP/1.1\r\nHost: localhost\r\n\r\n`;

/** One quick request, then 100 ms later a request that runs `ms`, on the same connection. */
function quickThenSlow(socket: TLSSocket, ms: number): void {
  socket.write(GET);
  setTimeout(() => socket.destroyed || socket.write(slowGet(ms)), 100);
}

/** Send one request, then `filler` every 200 ms, never starting a second request. */
function requestThenTrickle(filler: string): (socket: TLSSocket) => void {
  return (socket) => {
    socket.write(GET);
    const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(filler)), 200);
    socket.on('close', () => clearInterval(timer));
  };
}

describe.each<HttpsAdapterChoice>(['express', 'fastify'])('keep-alive slowloris (%s)', (adapter) => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    pki = await testPki(`ka-${String(adapter)}`);
    https = await createHttpsApp(
      AttackAppModule,
      {
        tls: { cert: pki.server.cert, key: pki.server.key },
        timeouts: {
          headersMs: HEADERS_MS,
          requestMs: 1000,
          keepAliveMs: KEEP_ALIVE_MS,
          connectionsCheckingIntervalMs: CHECK_MS,
        },
        reload: { watch: false, sighup: false },
        nest: { logger: false },
      },
      adapter,
    );
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
  });

  it.each([
    ['CRLF', '\r\n'],
    ['bare LF', '\n'],
  ])(
    'closes a kept-alive connection fed %s between requests, within keepAlive + headers timeouts',
    async (_name, filler) => {
      const r = await rawTls(port, { ca: pki.ca.certPem }, requestThenTrickle(filler), DEADLINE_MS);
      expect(okAnswers(r.data)).toBe(1);
      expect(r.closed).toBe(true);
    },
  );

  it('still serves a second request sent on the same connection within the keep-alive time', async () => {
    const r = await rawTlsUntil(
      port,
      { ca: pki.ca.certPem },
      (socket) => {
        socket.write(GET);
        setTimeout(() => socket.destroyed || socket.write(GET), KEEP_ALIVE_MS / 2);
      },
      (data) => okAnswers(data) === 2 && data.endsWith('{"ok":true}'),
      DEADLINE_MS,
    );
    expect(r.done).toBe(true);
  });

  it('does not cut a request that runs longer than the idle limit on a kept-alive connection', async () => {
    const slow = IDLE_LIMIT_MS + 300;
    const r = await rawTlsUntil(
      port,
      { ca: pki.ca.certPem },
      // The idle deadline armed after the first answer must be ignored while this request runs.
      (socket) => quickThenSlow(socket, slow),
      (data) => data.includes(`{"waited":${slow}}`),
      slow + 2500,
    );
    expect(r.done).toBe(true);
    expect(okAnswers(r.data)).toBe(2);
  });

  it('closes the connection fed CRLF after a request that outlived the idle limit', async () => {
    // The idle deadline fires while the slow request runs (and is ignored), is re-armed when the
    // slow answer ends, and must then close the connection whatever stray bytes arrive.
    const slow = IDLE_LIMIT_MS + 300;
    const r = await rawTls(
      port,
      { ca: pki.ca.certPem },
      (socket) => {
        quickThenSlow(socket, slow);
        let seen = '';
        let trickling = false;
        socket.on('data', (chunk: Buffer) => {
          seen += chunk.toString('latin1');
          if (trickling || !seen.includes(`{"waited":${slow}}`)) return;
          trickling = true;
          const timer = setInterval(
            () => (socket.destroyed ? clearInterval(timer) : socket.write('\r\n')),
            200,
          );
          socket.on('close', () => clearInterval(timer));
        });
      },
      slow + DEADLINE_MS,
    );
    expect(okAnswers(r.data)).toBe(2);
    expect(r.data).toContain(`{"waited":${slow}}`);
    expect(r.closed).toBe(true);
  });

  it('answers two pipelined requests, the second slower than the idle limit', async () => {
    const slow = IDLE_LIMIT_MS + 300;
    const r = await rawTlsUntil(
      port,
      { ca: pki.ca.certPem },
      (socket) => socket.write(GET + slowGet(slow)),
      (data) => data.includes(`{"waited":${slow}}`),
      slow + 2500,
    );
    expect(r.done).toBe(true);
    expect(okAnswers(r.data)).toBe(2);
  });

  it('still closes a connection that never sends a request with 408 (headers timeout)', async () => {
    const r = await rawTls(port, { ca: pki.ca.certPem }, () => undefined, HEADERS_MS + 2500);
    expect(r.closed).toBe(true);
    expect(r.data.startsWith('HTTP/1.1 408 ')).toBe(true);
  });
});
