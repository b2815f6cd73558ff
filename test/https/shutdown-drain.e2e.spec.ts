import 'reflect-metadata';
import { connect } from 'node:net';
import { request } from 'node:https';
import { describe, expect, it } from 'vitest';
import { DrainAppModule } from './fixtures/drain.app.js';
import { streamEvents } from './fixtures/stream.app.js';
import { startApp } from '../support/harness.js';

interface StreamEnd {
  text: string;
  how: string;
}

/** Open the endless event stream; resolves with what was read once it ends or is cut. */
function openStream(port: number, ca: string, opened: () => void): Promise<StreamEnd> {
  return new Promise((resolve) => {
    let text = '';
    const req = request(
      { host: '127.0.0.1', port, path: '/events', servername: 'localhost', ca, agent: false },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text === '') opened();
          text += c;
        });
        res.on('end', () => resolve({ text, how: 'end' }));
        res.on('aborted', () => resolve({ text, how: 'aborted' }));
        res.on('error', (e: NodeJS.ErrnoException) => resolve({ text, how: e.code ?? e.message }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ text, how: e.code ?? e.message }));
    req.end();
  });
}

/** A plain TCP connect: 'connected' or the error code. */
function tcpConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe.each(['express', 'fastify'] as const)('close() drains before it stops (%s)', (adapter) => {
  it('readiness 503 at once, serving through the drain delay, then refusing, in-flight work finished', async () => {
    const { pki, https, port, call } = await startApp(DrainAppModule, {
      timeouts: { drainDelayMs: 1500, shutdownGracePeriodMs: 4000 },
      adapter,
    });
    streamEvents.writesAfterEnd = 0;
    expect((await call('/ready')).status).toBe(200);
    expect(https.isDraining()).toBe(false);
    let markOpen!: () => void;
    const isOpen = new Promise<void>((resolve) => (markOpen = resolve));
    const stream = openStream(port, pki.ca.certPem, markOpen);
    await isOpen;

    const closed = https.close();
    // 1. Readiness is false from the call on, before any delay.
    expect(https.isDraining()).toBe(true);
    const ready = await call('/ready');
    expect(ready.status).toBe(503);
    // 2. During the drain delay, new connections are still accepted and served.
    const hello = await call('/hello');
    expect(hello.status).toBe(200);
    expect(hello.body).toEqual({ hello: 'world' });
    const slow = call('/slow');
    // 3. Then the listener closes: new connections are refused (bounded wait: 100 × 100 ms).
    let refused = '';
    for (let i = 0; i < 100; i += 1) {
      refused = await tcpConnect(port);
      if (refused !== 'connected') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(refused).toBe('ECONNREFUSED');
    // 4. The request in flight when the listener closed still gets its answer.
    const late = await slow;
    expect(late.status).toBe(200);
    expect(late.body).toEqual({ slow: true });
    // 5. The open stream ends with an event its client reads, then a clean end.
    const { text, how } = await stream;
    expect(how).toBe('end');
    expect(text.trim().split('\n\n').at(-1)).toBe(
      'data: {"error":{"code":"ERR_SHUTTING_DOWN","message":"The server is shutting down. Retry on a new connection."}}',
    );
    await closed;
  });

  it('without a drain delay, readiness is false and the listener closes at once', async () => {
    const { https, port, call } = await startApp(DrainAppModule, { adapter });
    expect((await call('/ready')).status).toBe(200);
    const closed = https.close();
    expect(https.isDraining()).toBe(true);
    await closed;
    expect(await tcpConnect(port)).toBe('ECONNREFUSED');
  });
});
