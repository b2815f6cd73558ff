/**
 * Graceful shutdown and keep-alive: a client holding a pooled connection to a draining replica is
 * told `Connection: close` on the next answer and the server closes the connection after it, so
 * the client's next request opens a connection that the load balancer routes elsewhere. Idle
 * connections are closed when the listener stops, not before. Express and Fastify, real TLS on
 * loopback. The raw client below never closes its side, so every close it sees is the server's.
 */
import 'reflect-metadata';
import { Agent, request, type RequestOptions } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import type { Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HeldAppModule, held } from './fixtures/held.app.js';
import { startApp, type TestApp } from '../support/harness.js';
import type { HttpsApp } from '@inference-shield/https';

/** One answer as a raw HTTP/1.1 client read it. */
interface RawAnswer {
  status: number;
  /** Header names in lower case; the last value of a repeated one. */
  headers: Record<string, string>;
  body: string;
}

/**
 * An HTTP/1.1 client on one TLS connection (keep-alive is HTTP/1.1's default): it sends a request,
 * reads one answer (Content-Length or chunked), and never ends or destroys the connection itself
 * until {@link destroy}. `serverClosed` resolves when the server ends the connection.
 */
class KeepAliveConnection {
  readonly serverClosed: Promise<void>;
  closedByServer = false;
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;

  private constructor(private readonly socket: TLSSocket) {
    this.serverClosed = new Promise((resolve) => {
      const closed = (): void => {
        this.closedByServer = true;
        resolve();
        this.waiter?.();
      };
      // 'end': the server's FIN. allowHalfOpen is off, so Node then ends and closes this side.
      socket.once('end', closed);
      // A reset instead of a FIN is still the server's doing: the client never closes.
      socket.once('close', closed);
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
  }

  static open(port: number, ca: string): Promise<KeepAliveConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca });
      socket.once('secureConnect', () => resolve(new KeepAliveConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Send `GET path`; resolves once the head has arrived (the body may still be coming). */
  async send(path: string): Promise<{ status: number; headers: Record<string, string> }> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    await this.until(() => this.buffer.indexOf('\r\n\r\n') >= 0);
    return parseHead(this.buffer.subarray(0, this.buffer.indexOf('\r\n\r\n')).toString('latin1'));
  }

  /** Send `GET path` and read its whole answer. */
  async get(path: string): Promise<RawAnswer> {
    await this.send(path);
    return this.answer();
  }

  /** Read the rest of the answer whose head {@link send} returned. */
  async answer(): Promise<RawAnswer> {
    const headEnd = this.buffer.indexOf('\r\n\r\n');
    const { status, headers } = parseHead(this.buffer.subarray(0, headEnd).toString('latin1'));
    const start = headEnd + 4;
    let end: number;
    if (headers['transfer-encoding'] === 'chunked') {
      await this.until(() => this.buffer.indexOf('\r\n0\r\n\r\n', start - 2) >= 0);
      end = this.buffer.indexOf('\r\n0\r\n\r\n', start - 2) + 7;
    } else {
      end = start + Number(headers['content-length'] ?? 0);
      await this.until(() => this.buffer.length >= end);
    }
    const body = this.buffer.subarray(start, end).toString('utf8');
    this.buffer = this.buffer.subarray(end);
    return { status, headers, body };
  }

  destroy(): void {
    this.socket.destroy();
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      if (this.closedByServer) throw new Error('the server closed the connection before the answer');
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers };
}

/** One GET through a keep-alive `https.Agent`: the answer, and the pooled socket it went on. */
function agentGet(
  agent: Agent,
  port: number,
  ca: string,
  path: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; socket: Socket; reused: boolean }> {
  const options: RequestOptions = { host: '127.0.0.1', port, path, servername: 'localhost', ca, agent };
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      const socket = res.socket;
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, socket, reused: req.reusedSocket }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

function closeOf(socket: Socket): Promise<void> {
  return socket.destroyed
    ? Promise.resolve()
    : new Promise((resolve) => socket.once('close', () => resolve()));
}

function listenerOf(https: HttpsApp): Server {
  return https.app.getHttpServer() as Server;
}

/** Bounded wait (200 × 25 ms) for the listener to stop accepting, the end of the drain delay. */
async function listenerClosed(https: HttpsApp): Promise<void> {
  for (let i = 0; i < 200 && listenerOf(https).listening; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(listenerOf(https).listening).toBe(false);
}

const opened: KeepAliveConnection[] = [];
let app: TestApp | undefined;

async function connection(port: number, ca: string): Promise<KeepAliveConnection> {
  const c = await KeepAliveConnection.open(port, ca);
  opened.push(c);
  return c;
}

afterEach(async () => {
  held.answer.release();
  held.stream.release();
  held.answer.reset();
  held.stream.reset();
  for (const c of opened.splice(0)) c.destroy();
  await app?.close();
  app = undefined;
});

describe.each(['express', 'fastify'] as const)('keep-alive connections during the drain (%s)', (adapter) => {
  it('a pooled connection is told Connection: close during the drain delay and closed after it; an idle one when the listener stops', async () => {
    // Long enough that the steps below run inside it: each is asserted to have (server listening).
    app = await startApp(HeldAppModule, { adapter, timeouts: { drainDelayMs: 3000 } });
    const { https, port, ca } = app;
    const pooled = await connection(port, ca);
    const idle = await connection(port, ca);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Before the drain: keep-alive as usual, on every client.
      const before = await pooled.get('/hello');
      expect(before.status).toBe(200);
      expect(before.headers['connection']).toBe('keep-alive');
      expect((await idle.get('/hello')).headers['connection']).toBe('keep-alive');
      const first = await agentGet(agent, port, ca, '/hello');
      expect(first.headers['connection']).toBe('keep-alive');
      const second = await agentGet(agent, port, ca, '/hello');
      expect(second.reused).toBe(true);
      expect(second.headers['connection']).toBe('keep-alive');

      const closed = https.close();
      // During the drain delay, on the same connections: the answer says close...
      const during = await pooled.get('/hello');
      expect(during.status).toBe(200);
      expect(during.body).toBe('{"hello":"world"}');
      expect(during.headers['connection']).toBe('close');
      // ...and the server ends the connection (this client never closes its side).
      await pooled.serverClosed;
      const viaAgent = await agentGet(agent, port, ca, '/hello');
      expect(viaAgent.reused).toBe(true);
      expect(viaAgent.socket).toBe(second.socket);
      expect(viaAgent.headers['connection']).toBe('close');
      await closeOf(viaAgent.socket);
      // All of that was served during the drain delay, not after the listener closed.
      expect(listenerOf(https).listening).toBe(true);
      expect(https.isDraining()).toBe(true);
      // An idle connection is left alone while the listener still accepts...
      expect(idle.closedByServer).toBe(false);
      // ...and closed by the server once the drain delay is over and the listener has stopped.
      await idle.serverClosed;
      expect(listenerOf(https).listening).toBe(false);
      await closed;
    } finally {
      agent.destroy();
    }
  });

  it('a request parsed before the drain began and answered during it says Connection: close', async () => {
    app = await startApp(HeldAppModule, { adapter, timeouts: { drainDelayMs: 3000 } });
    const { https, port, ca } = app;
    const c = await connection(port, ca);
    expect((await c.get('/hello')).headers['connection']).toBe('keep-alive');
    const answer = c.send('/held');
    await held.answer.entered;
    const closed = https.close();
    held.answer.release();
    const head = await answer;
    expect(head.status).toBe(200);
    expect(head.headers['connection']).toBe('close');
    expect((await c.answer()).body).toBe('{"held":true}');
    await c.serverClosed;
    expect(listenerOf(https).listening).toBe(true);
    await closed;
  });

  it('an answer whose head went out before the drain ends its connection once it ends after the listener stopped', async () => {
    // Keep-alive and grace periods far above the test timeout: only the drain can close the
    // connection in time.
    app = await startApp(HeldAppModule, {
      adapter,
      timeouts: { drainDelayMs: 500, keepAliveMs: 120_000, shutdownGracePeriodMs: 120_000 },
    });
    const { https, port, ca } = app;
    const c = await connection(port, ca);
    const head = await c.send('/held-stream');
    expect(head.headers['connection']).toBe('keep-alive');
    const closed = https.close();
    await listenerClosed(https);
    // Still open: its answer is in flight.
    expect(c.closedByServer).toBe(false);
    held.stream.release();
    expect((await c.answer()).body).toContain('last');
    await c.serverClosed;
    await closed;
  });

  it('without a drain, answers keep their connection open', async () => {
    app = await startApp(HeldAppModule, { adapter });
    const c = await connection(app.port, app.ca);
    for (let i = 0; i < 3; i += 1) {
      const answer = await c.get('/hello');
      expect(answer.status).toBe(200);
      expect(answer.headers['connection']).toBe('keep-alive');
    }
    expect(c.closedByServer).toBe(false);
  });
});
