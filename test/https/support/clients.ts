import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request, type Agent } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { IEntryNestModule } from '@nestjs/core';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import {
  createHttpsApp,
  type HttpsAdapterChoice,
  type HttpsApp,
  type HttpsBootstrapOptions,
} from '@inference-shield/https';

/** A fresh test PKI in its own temp folder. */
export async function testPki(prefix: string): Promise<TestPki> {
  return createTestPki(mkdtempSync(join(tmpdir(), `${prefix}-`)));
}

/** An app of the HTTPS bootstrap on its own test PKI, listening on loopback. */
export interface TestApp {
  readonly pki: TestPki;
  readonly https: HttpsApp;
  readonly port: number;
}

/**
 * `createHttpsApp(module)` with the server certificate of a fresh test PKI, file watching and
 * SIGHUP off and Nest's logging off (unless `options` say otherwise), listening on 127.0.0.1.
 */
export async function startTestApp(
  prefix: string,
  module: IEntryNestModule,
  options: Omit<HttpsBootstrapOptions, 'tls'> = {},
  adapter?: HttpsAdapterChoice,
): Promise<TestApp> {
  const pki = await testPki(prefix);
  const https = await createHttpsApp(
    module,
    {
      tls: { cert: pki.server.cert, key: pki.server.key },
      reload: { watch: false, sighup: false },
      nest: { logger: false },
      ...options,
    },
    adapter,
  );
  const { port } = await https.listen(0, '127.0.0.1');
  return { pki, https, port };
}

export interface HttpsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** SHA-256 of the server certificate, lowercase hex without colons. */
  serverFingerprint: string;
}

export interface HttpsCallOptions {
  ca: string;
  path?: string;
  method?: string;
  body?: string | Buffer;
  headers?: Record<string, string | number>;
  cert?: string;
  key?: string;
  agent?: Agent | false;
  servername?: string;
}

/** One HTTPS request on loopback, verifying the server against `ca`. */
export function httpsCall(port: number, opts: HttpsCallOptions): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/hello',
        method: opts.method ?? 'GET',
        ca: opts.ca,
        servername: opts.servername ?? 'localhost',
        headers: opts.headers,
        cert: opts.cert,
        key: opts.key,
        agent: opts.agent ?? false,
      },
      (res) => {
        // Read now: a keep-alive agent takes the socket back before 'end'.
        const peer = (res.socket as TLSSocket).getPeerX509Certificate?.();
        const fingerprint = peer?.fingerprint256 ?? '';
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            serverFingerprint: fingerprint.replaceAll(':', '').toLowerCase(),
          });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** What a raw connection received before it closed (or before the deadline). */
export interface RawResult {
  data: string;
  /** True when the server closed the connection before the deadline. */
  closed: boolean;
  error?: NodeJS.ErrnoException;
}

function collect(socket: Socket, deadlineMs: number): Promise<RawResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: NodeJS.ErrnoException | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closed: false, error });
    }, deadlineMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closed: true, error });
    });
  });
}

/** Open a TCP connection, send `data` (plain bytes), and collect the answer until close or deadline. */
export function rawTcp(
  port: number,
  data: string | Buffer | undefined,
  deadlineMs = 5000,
  host = '127.0.0.1',
): Promise<RawResult> {
  const socket = tcpConnect(port, host);
  const result = collect(socket, deadlineMs);
  if (data !== undefined) socket.on('connect', () => socket.write(data));
  return result;
}

/** Connect with TLS (verifying the server), then run `drive` on the socket and collect until close. */
export async function rawTls(
  port: number,
  tls: ConnectionOptions,
  drive: (socket: TLSSocket) => void | Promise<void>,
  deadlineMs = 5000,
): Promise<RawResult> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...tls });
  const result = collect(socket, deadlineMs);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  await drive(socket);
  return result;
}

/** Outcome of a TLS handshake attempt. */
export interface HandshakeResult {
  ok: boolean;
  authorized?: boolean;
  protocol?: string | null;
  cipher?: string;
  /** Error code of the failure (client-side view), e.g. ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED. */
  code?: string;
}

/**
 * Handshake, then send one request and wait for the answer's first bytes: with TLS 1.3 a refused
 * client certificate is only reported after the client's first flight, so a bare "connected" is
 * not proof of acceptance.
 */
export function handshake(port: number, tls: ConnectionOptions, deadlineMs = 5000): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...tls });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, code: 'DEADLINE' });
    }, deadlineMs);
    let settled = false;
    const done = (r: HandshakeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, code: e.code ?? e.message }));
    socket.on('close', () => done({ ok: false, code: 'CLOSED' }));
    socket.on('secureConnect', () => {
      socket.write('GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      socket.once('data', () =>
        done({
          ok: true,
          authorized: socket.authorized,
          protocol: socket.getProtocol(),
          cipher: socket.getCipher().name,
        }),
      );
    });
  });
}

/** Run a command with stdin, bounded in time; resolves with its exit code and output. */
export function run(
  command: string,
  args: readonly string[],
  input = '',
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** `openssl s_client` against the loopback port, with `-brief` output; stdin closed at once. */
export function sClient(port: number, ca: string, extra: readonly string[], input = '') {
  return run(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', ca, ...extra],
    input,
  );
}
