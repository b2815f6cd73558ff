/**
 * Real servers on loopback for the upstream tests: recording TLS servers (good and bad
 * certificates), an old-TLS server, a CONNECT proxy, an `openssl s_server`. Each records what it
 * received after the handshake, so a test can prove no request byte left the client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import {
  createServer as createHttpsServer,
  type Server as HttpsServer,
  type ServerOptions,
} from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';

/** A fresh test PKI in a temp folder; `cleanup()` removes it. */
export async function testPki(): Promise<TestPki & { cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'shield-upstream-'));
  const pki = await createTestPki(dir);
  return Object.assign(Object.create(null) as object, pki, {
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }) as TestPki & {
    cleanup(): void;
  };
}

/** What a recording server saw. */
export interface Recording {
  /** TCP connections accepted. */
  tcpConnections: number;
  /** TLS handshakes completed (server side). */
  handshakes: number;
  /** Application bytes received after the handshake. */
  bytes: number;
  /** The first 64 KiB of those bytes. */
  text(): string;
}

export interface RecordingServer extends Recording {
  readonly port: number;
  readonly server: net.Server;
  close(): Promise<void>;
}

/**
 * A TLS server that records everything it receives after the handshake and, when `respond` is set,
 * answers each request with `200 ok` (the positive control that recording works).
 */
export async function recordingTlsServer(options: tls.TlsOptions, respond = false): Promise<RecordingServer> {
  const chunks: Buffer[] = [];
  const state = { tcpConnections: 0, handshakes: 0, bytes: 0 };
  const server = tls.createServer(options, (socket) => {
    state.handshakes++;
    socket.on('data', (d: Buffer) => {
      state.bytes += d.length;
      if (chunks.reduce((n, c) => n + c.length, 0) < 65536) chunks.push(d);
      if (respond && d.includes('\r\n\r\n'))
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok');
    });
    socket.on('error', () => undefined);
  });
  server.on('connection', () => state.tcpConnections++);
  server.on('tlsClientError', () => undefined);
  const port = await listen(server);
  return {
    port,
    server,
    get tcpConnections() {
      return state.tcpConnections;
    },
    get handshakes() {
      return state.handshakes;
    },
    get bytes() {
      return state.bytes;
    },
    text: () => Buffer.concat(chunks).toString('latin1'),
    close: () => closeServer(server),
  };
}

/** An HTTPS server with a handler, on loopback port 0. */
export async function httpsServer(
  options: ServerOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ port: number; server: HttpsServer; close(): Promise<void> }> {
  const server = createHttpsServer({ minVersion: 'TLSv1.2', ...options }, handler);
  server.on('tlsClientError', () => undefined);
  const port = await listen(server);
  return { port, server, close: () => closeServer(server) };
}

/** A CONNECT proxy that records the CONNECT lines and every byte it relays towards the target. */
export async function connectProxy(): Promise<{
  port: number;
  connects: string[];
  relayed(): Buffer;
  close(): Promise<void>;
}> {
  const connects: string[] = [];
  const relayed: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 8192) client.destroy();
        return;
      }
      client.off('data', onData);
      const line = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      connects.push(line);
      const m = /^CONNECT ([^\s:]+):(\d+) HTTP\/1\.1$/.exec(line);
      if (m === null) {
        client.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n');
        return;
      }
      const target = net.connect(Number(m[2]), m[1] === 'localhost' ? '127.0.0.1' : m[1]);
      sockets.add(target);
      target.on('close', () => sockets.delete(target));
      target.on('error', () => client.destroy());
      target.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) {
          relayed.push(rest);
          target.write(rest);
        }
        client.on('data', (c: Buffer) => {
          relayed.push(c);
          target.write(c);
        });
        target.pipe(client);
        client.on('close', () => target.destroy());
      });
    };
    client.on('data', onData);
  });
  const port = await listen(server);
  return {
    port,
    connects,
    relayed: () => Buffer.concat(relayed),
    close: async () => {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
}

/** `openssl s_server` speaking TLS 1.0 only, with the given certificate. */
export async function opensslTls10Server(
  cert: string,
  key: string,
): Promise<{ port: number; close(): Promise<void> }> {
  const child: ChildProcess = spawn(
    'openssl',
    // SECLEVEL=0: OpenSSL 3 refuses TLS 1.0 at the default level even as a server.
    ['s_server', '-tls1', '-cipher', 'DEFAULT:@SECLEVEL=0', '-cert', cert, '-key', key, '-accept', '0'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      // Never leave a stray server behind a failed start.
      child.kill('SIGKILL');
      reject(new Error(`openssl s_server did not start: ${out}`));
    }, 10_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /ACCEPT .*:(\d+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`openssl s_server exited with ${code}: ${out}`));
    });
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

const openSockets = new WeakMap<net.Server, Set<net.Socket>>();

export function listen(server: net.Server): Promise<number> {
  // Track sockets so close() can end them: a stuck test peer must never hang afterAll.
  const sockets = new Set<net.Socket>();
  openSockets.set(server, sockets);
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of openSockets.get(server) ?? []) socket.destroy();
  });
}

/** A promise with its resolver, to let a test drive a server step by step (no timing). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The code of a rejected call (ShieldError or an SDK error whose cause is one). */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    let e: unknown = err;
    for (let i = 0; i < 5 && e !== undefined && e !== null; i++) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('ERR_')) return code;
      e = (e as { cause?: unknown }).cause;
    }
    return `not a ShieldError: ${String(err)}`;
  }
  return 'resolved';
}
