import { mkdtempSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect, type TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import {
  interceptBody,
  letGateAnswerMissingHost,
  parserAttached,
  responseOnSocket,
  setParserLimits,
  takeTlsConnectionListener,
  tcpSocketUnder,
} from './node-internals.js';

/**
 * Each Node internal the package relies on, checked on a real TLS server and socket. A failure here
 * means this Node version changed one of them: read node-internals.ts for what then breaks. Run on
 * Node 20, 24 and 26 (`PATH=.ci/node/26/package/bin:$PATH npx vitest run <this file>`).
 */

let pki: TestPki;
let server: Server | undefined;

beforeAll(async () => {
  pki = await createTestPki(mkdtempSync(join(tmpdir(), 'node-internals-')));
});

afterEach(async () => {
  const s = server;
  server = undefined;
  if (s === undefined) return;
  s.closeAllConnections();
  await new Promise((resolve) => s.close(resolve));
});

async function serve(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  setup: (s: Server) => void = () => undefined,
): Promise<number> {
  server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, listener);
  setup(server);
  const s = server;
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as AddressInfo).port;
}

/** Send `chunks` over TLS (one write each, `gapMs` apart) and collect the answer until close. */
function exchange(port: number, chunks: readonly string[], gapMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pki.ca.certPem,
    });
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'ECONNRESET' ? resolve(answer) : reject(err),
    );
    socket.on('close', () => resolve(answer));
    socket.once('secureConnect', () => {
      let i = 0;
      const next = (): void => {
        if (socket.destroyed) return;
        const chunk = chunks[i++];
        if (chunk === undefined) return;
        socket.write(chunk);
        setTimeout(next, gapMs);
      };
      next();
    });
  });
}

const GET = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

describe('Node internals the HTTPS package relies on', () => {
  it('tls.Server has one connection listener, which takes a raw socket whose first bytes were pushed back', async () => {
    const port = await serve((_req, res) => res.end('ok'));
    const s = server as Server;
    const handToTls = takeTlsConnectionListener(s);
    expect(s.listenerCount('connection')).toBe(0);
    s.on('connection', (socket: Socket) => {
      socket.once('data', (chunk: Buffer) => {
        socket.pause();
        socket.unshift(chunk);
        handToTls.call(s, socket);
      });
    });
    expect(await exchange(port, [GET])).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/);
  });

  it('tlsSocket._parent is the TCP socket the server accepted', async () => {
    const accepted: Socket[] = [];
    const under: unknown[] = [];
    const port = await serve(
      (req, res) => {
        under.push(tcpSocketUnder(req.socket));
        res.end('ok');
      },
      (s) => {
        s.prependListener('connection', (socket: Socket) => accepted.push(socket));
        s.on('secureConnection', (tls: TLSSocket) => under.push(tcpSocketUnder(tls)));
      },
    );
    await exchange(port, [GET]);
    expect(accepted).toHaveLength(1);
    expect(under).toEqual([accepted[0], accepted[0]]);
  });

  it('socket.parser is set while HTTP owns the socket and freed when an upgrade listener takes it', async () => {
    const seen: Record<string, boolean> = {};
    const port = await serve(
      (req, res) => {
        seen['request'] = parserAttached(req.socket);
        res.end('ok');
      },
      (s) =>
        s.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
          seen['upgrade'] = parserAttached(socket);
          socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        }),
    );
    await exchange(port, [GET]);
    await exchange(port, ['GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n']);
    expect(seen).toEqual({ request: true, upgrade: false });
  });

  it('socket._httpMessage is the response being written on the socket', async () => {
    let current: unknown;
    const port = await serve((req, res) => {
      res.writeHead(200, { 'Content-Length': '2' });
      res.flushHeaders();
      current = responseOnSocket(req.socket);
      res.end('ok');
    });
    await exchange(port, [GET]);
    expect(current).toBeDefined();
    expect((current as ServerResponse).headersSent).toBe(true);
  });

  it('the parser hands each body piece to req.push, and null at its end (chunked framing removed)', async () => {
    const pushed: (number | null)[] = [];
    let read = '';
    const port = await serve((req, res) => {
      interceptBody(
        req,
        function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding) {
          pushed.push(chunk === null ? null : (chunk as Buffer).length);
          return Readable.prototype.push.call(this, chunk, encoding);
        },
        () => undefined,
      );
      req.setEncoding('latin1');
      req.on('data', (d: string) => (read += d));
      req.on('end', () => res.end('ok'));
    });
    const head =
      'POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';
    await exchange(port, [head, '5\r\nhello\r\n', '6\r\n world\r\n', '0\r\n\r\n'], 20);
    expect(read).toBe('hello world');
    expect(pushed.filter((n) => n !== null).reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBe(11);
    expect(pushed.at(-1)).toBeNull();
  });

  it('Node calls req._dump for a body nobody read once the answer is sent', async () => {
    let dumped = 0;
    let counted = 0;
    const port = await serve((req, res) => {
      // As the request gate does, only a request that announces a body is intercepted.
      if (req.method !== 'POST') return void res.end('ok');
      interceptBody(
        req,
        function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding) {
          if (chunk !== null) counted += (chunk as Buffer).length;
          return Readable.prototype.push.call(this, chunk, encoding);
        },
        function (this: IncomingMessage) {
          dumped += 1;
          // What the request gate does: discard through push, so counting goes on.
          this.removeAllListeners('data');
          this.resume();
        },
      );
      res.end('ok');
    });
    // Kept alive: the body arrives after the answer; a second request then closes the connection.
    const head = 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n';
    const answer = await exchange(port, [head, '12345', '67890', GET], 50);
    expect(answer.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(dumped).toBe(1);
    expect(counted).toBe(10);
  });

  it('server.requireHostHeader is read per request: false lets a request without Host through', async () => {
    const reached: boolean[] = [];
    const noHost = 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n';
    const port = await serve((_req, res) => {
      reached.push(true);
      res.end('ok');
    });
    // Control: Node's own answer, which the request gate replaces with a coded one.
    expect(await exchange(port, [noHost])).toMatch(/^HTTP\/1\.1 400 /);
    expect(reached).toEqual([]);
    letGateAnswerMissingHost(server as Server);
    expect(await exchange(port, [noHost])).toMatch(/^HTTP\/1\.1 200 /);
    expect(reached).toEqual([true]);
  });

  it('server.maxHeaderSize set after creation applies to new connections', async () => {
    const errors: string[] = [];
    const port = await serve(
      (_req, res) => res.end('ok'),
      (s) => {
        setParserLimits(s, { maxHeaderSize: 1024, connectionsCheckingInterval: 30_000 });
        s.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
          errors.push(err.code ?? '');
          socket.destroy();
        });
      },
    );
    await exchange(port, [`GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(2048)}\r\n\r\n`]);
    expect(errors).toEqual(['HPE_HEADER_OVERFLOW']);
  });

  it('server.connectionsCheckingInterval set before listen drives the headers timeout', async () => {
    const errors: string[] = [];
    const started = Date.now();
    const port = await serve(
      (_req, res) => res.end('ok'),
      (s) => {
        s.headersTimeout = 200;
        s.requestTimeout = 200;
        setParserLimits(s, { maxHeaderSize: 16_384, connectionsCheckingInterval: 50 });
        s.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
          errors.push(err.code ?? '');
          socket.destroy();
        });
      },
    );
    // A head that never ends: with Node's 30 s default interval this would outlive the test.
    await exchange(port, ['GET / HTTP/1.1\r\n', 'Host: localhost\r\n'], 100);
    expect(errors).toEqual(['ERR_HTTP_REQUEST_TIMEOUT']);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
