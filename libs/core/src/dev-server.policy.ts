/**
 * The TLS policy and plaintext answer of `@inference-shield/https`, for our dev tools' own Node
 * HTTPS servers, which do not go through `createHttpsApp` (the dev IdP is oidc-provider, a Koa
 * app; the stand-in LLM is a bare `node:https` server standing in for a hosted API). A dev tool that users point their apps at must not teach them weaker TLS than
 * the bootstrap serves: no CBC suites (Lucky13), no static RSA, no renegotiation, and plain HTTP on
 * the TLS port gets the bootstrap's `400 ERR_HTTP_TO_HTTPS`, not an empty reply.
 */
import { STATUS_CODES } from 'node:http';
import { constants as cryptoConstants } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Server as TlsServer, TlsOptions } from 'node:tls';
import { toHttpResponse } from './http-error.mapping.js';
import { takeTlsConnectionListener } from './node-internals.js';
import { ShieldError } from './shield.error.js';
import { ECDH_CURVES, TLS12_CIPHERS, TLS13_CIPHERS } from './tls-suites.js';

/** Server options of the bootstrap's TLS policy: TLS 1.2+, ECDHE with AEAD suites only, no renegotiation. */
export const DEV_SERVER_TLS_POLICY: Readonly<TlsOptions> = Object.freeze({
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(':'),
  ecdhCurve: ECDH_CURVES,
  honorCipherOrder: true,
  secureOptions:
    cryptoConstants.SSL_OP_NO_RENEGOTIATION |
    cryptoConstants.SSL_OP_NO_SSLv3 |
    cryptoConstants.SSL_OP_NO_TLSv1 |
    cryptoConstants.SSL_OP_NO_TLSv1_1,
});

/** The first byte of a TLS handshake record (RFC 8446 5.1, ContentType 22). */
const TLS_HANDSHAKE = 0x16;
/** After answering plain HTTP, how long the client has to read the answer before the socket goes. */
const PLAINTEXT_LINGER_MS = 1000;

function plaintextRefusal(): Buffer {
  // The one mapping of codes to responses: the same status and body as the bootstrap's answer.
  const response = toHttpResponse(new ShieldError('ERR_HTTP_TO_HTTPS'));
  const body = JSON.stringify(response.body);
  const lines = [
    `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(response.headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
}

/** What {@link refusePlaintext} leaves to the server's owner. */
export interface PlaintextGate {
  /** Destroy every raw connection still open (at close: one that never sent a byte would hold `server.close()`). */
  destroyAll(): void;
}

/**
 * Put a one-byte check in front of the TLS server's connection listener: a TLS handshake goes on to
 * TLS unchanged, an HTTP method (an ASCII letter) gets `400 ERR_HTTP_TO_HTTPS` and is closed, and
 * anything else is closed at once. A connection that sends nothing within `idleMs` is closed.
 */
export function refusePlaintext(server: TlsServer, idleMs: number): PlaintextGate {
  // Fails closed (throws) on a server whose connection handling we do not recognise.
  const handToTls = takeTlsConnectionListener(server);
  const refusal = plaintextRefusal();
  const sockets = new Set<Socket>();

  function destroySelf(this: Socket): void {
    this.destroy();
  }
  function onFirstChunk(this: Socket, chunk: Buffer): void {
    this.setTimeout(0);
    this.removeListener('timeout', destroySelf);
    const first = chunk[0];
    if (first === TLS_HANDSHAKE) {
      this.pause();
      this.unshift(chunk);
      handToTls.call(server, this);
      return;
    }
    if (first !== undefined && ((first >= 0x41 && first <= 0x5a) || (first >= 0x61 && first <= 0x7a))) {
      // Answer in plain text (the client can read nothing else), then drop what else it sends
      // until it closes or the linger ends, so the answer is not lost to a TCP reset.
      this.end(refusal);
      this.resume();
      setTimeout(() => this.destroy(), PLAINTEXT_LINGER_MS).unref();
      return;
    }
    this.destroy();
  }

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', destroySelf);
    socket.setTimeout(idleMs);
    socket.once('timeout', destroySelf);
    socket.once('data', onFirstChunk);
  });
  return {
    destroyAll() {
      for (const socket of sockets) socket.destroy();
    },
  };
}
