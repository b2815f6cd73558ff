import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

/** What a raw TLS connection received, and whether the server closed it before the deadline. */
export interface UntilResult {
  data: string;
  /** True when the server closed the connection (before `done` held and before the deadline). */
  closed: boolean;
  /** True when `done` held first: the client stopped waiting and closed. */
  done: boolean;
}

/**
 * Connect with TLS (verifying the server), run `drive`, and collect what arrives until the server
 * closes, `done(data)` holds, or the deadline passes: tests that expect an answer do not wait for
 * the deadline, tests that expect a close still fail (closed: false) when it never comes.
 */
export function rawTlsUntil(
  port: number,
  tls: ConnectionOptions,
  drive: (socket: TLSSocket) => void,
  done: (data: string) => boolean,
  deadlineMs: number,
): Promise<UntilResult> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...tls });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: boolean, isDone: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closed, done: isDone });
    };
    const timer = setTimeout(() => finish(false, false), deadlineMs);
    socket.once('secureConnect', () => drive(socket));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (done(Buffer.concat(chunks).toString('latin1'))) finish(false, true);
    });
    socket.on('error', (err) => {
      if (chunks.length === 0 && !settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('close', () => finish(true, false));
  });
}

/** Count complete `HTTP/1.1 200` status lines in what a raw connection received. */
export function okAnswers(data: string): number {
  return data.split('HTTP/1.1 200 OK').length - 1;
}
