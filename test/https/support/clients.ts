/**
 * Raw clients for the https specs: plain TCP, TLS byte by byte, a bare handshake, and the openssl
 * CLI. Starting an app and a plain HTTPS call are the harness's (test/support/harness.ts).
 */
import { spawn } from 'node:child_process';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

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
