/**
 * A raw TLS client for the header-only refusal tests: it writes exactly the bytes it is given (a
 * request head and the first bytes of a body it never finishes), then collects what the server
 * answers until the server closes or `waitMs` passes.
 */
import { connect, type TLSSocket } from 'node:tls';
import type { ClientCertificate } from '../../support/harness.js';

export interface RawAnswer {
  /** Everything received. */
  readonly data: string;
  /** The server closed the connection before `waitMs`. */
  readonly closed: boolean;
  readonly status: number | undefined;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Connects to 127.0.0.1:port (SNI localhost), writes `bytes`, waits for the answer. */
export function rawExchange(
  port: number,
  opts: { ca: string; client?: ClientCertificate; waitMs?: number },
  bytes: string,
  then?: (socket: TLSSocket) => void,
): Promise<RawAnswer> {
  const waitMs = opts.waitMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: opts.ca,
      ...(opts.client ? { cert: opts.client.certPem, key: opts.client.keyPem } : {}),
    });
    let data = '';
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parse(data, closed));
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      socket.write(bytes);
      then?.(socket);
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (err) => {
      // A reset after the answer arrived still counts as closed; before, it is a failure.
      if (data.length > 0) finish(true);
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

function parse(data: string, closed: boolean): RawAnswer {
  const end = data.indexOf('\r\n\r\n');
  const head = end === -1 ? data : data.slice(0, end);
  const lines = head.split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1];
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return {
    data,
    closed,
    status: status === undefined ? undefined : Number(status),
    headers,
    body: end === -1 ? '' : data.slice(end + 4),
  };
}
