import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { responseOnSocket } from '@inference-shield/core/internal';
import { rawRefusal } from './raw-response.js';

/** How long a refused client may take to read the answer before its connection is destroyed. */
const LINGER_MS = 1000;

/**
 * Answers the errors Node's HTTP parser raises before any framework sees a request: a request head
 * over `maxHeaderSize` gets `431`, a head or body that did not arrive within its timeout `408`
 * (this is what closes a slowloris connection), any other parse error `400`. Other errors (a reset,
 * a failed TLS handshake) close the connection without an answer. Each answer is our
 * JSON body from the one code mapping, built once, and the connection is then closed. Replaces the
 * framework's own handler (Fastify installs one), so both adapters answer the same way.
 */
export function installClientErrorHandler(
  server: TlsServer,
  headers: readonly (readonly [string, string])[],
): void {
  const headersTooLarge = rawRefusal('ERR_HEADERS_TOO_LARGE', headers);
  const timeout = rawRefusal('ERR_REQUEST_TIMEOUT', headers);
  const badRequest = rawRefusal('ERR_BAD_REQUEST', headers);

  server.removeAllListeners('clientError');
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // https.Server forwards TLS handshake failures (timeouts, refused client certificates) here as
    // well: a connection that never became HTTP gets no HTTP answer, it is closed.
    const code = err.code ?? '';
    if (socket.destroyed || !(code.startsWith('HPE_') || code === 'ERR_HTTP_REQUEST_TIMEOUT')) {
      socket.destroy();
      return;
    }
    // Never write a second response over one whose head is already on the wire.
    const current = responseOnSocket(socket);
    if (socket.writable && current?.headersSent !== true) {
      const answer =
        code === 'HPE_HEADER_OVERFLOW'
          ? headersTooLarge
          : code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? timeout
            : badRequest;
      socket.end(answer);
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
      return;
    }
    socket.destroy();
  });
}
