import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { Socket as NetSocket, type Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';

/**
 * Every reliance of Inference Shield on something Node does not document, in one place (the HTTPS
 * bootstrap's gates and the dev tools' servers use it through `@inference-shield/core/internal`).
 * Each function names the field it reads or writes and what goes wrong if a Node release changes
 * it; `node-internals.spec.ts` checks each one on a real TLS server and socket, so a Node version
 * that changes one fails that test by name (CI runs it on every supported Node: 20, 24, 26).
 * Nothing else in the packages touches an underscore field, `socket.parser` or a server field that
 * is not in Node's documentation.
 */

/**
 * The listener `tls.Server` installs for `'connection'` (Node's `tlsConnectionListener`), which
 * wraps an accepted TCP socket in a `TLSSocket`, removed from the server so that the connection
 * gate runs first and calls it itself (with `this` = the server). Relied on: a TLS server has
 * exactly one `'connection'` listener, and calling it with a raw socket whose first bytes were
 * pushed back (`unshift`) starts the handshake. Anything else throws: an unknown server might
 * serve plaintext or skip the gate.
 */
export function takeTlsConnectionListener(server: TlsServer): (this: TlsServer, socket: Socket) => void {
  const listeners = server.listeners('connection');
  const [listener] = listeners;
  if (listeners.length !== 1 || typeof listener !== 'function') {
    throw new Error(`expected the TLS server to have one connection listener, found ${listeners.length}`);
  }
  const handToTls = listener as (this: TlsServer, socket: Socket) => void;
  server.removeListener('connection', handToTls);
  return handToTls;
}

/**
 * The TCP socket under a `TLSSocket` the server accepted: `tlsSocket._parent`, which Node sets when
 * it wraps an accepted socket. Undefined when Node no longer records it; the callers then fall
 * back (the connection gate keeps only TLS's own handshake timer, a stalled sender is closed
 * without a TCP reset) rather than cut connections.
 */
export function tcpSocketUnder(tlsSocket: Socket): NetSocket | undefined {
  const parent = (tlsSocket as Socket & { _parent?: unknown })._parent;
  return parent instanceof NetSocket ? parent : undefined;
}

/**
 * Whether Node's HTTP parser still owns the connection: `socket.parser`, which Node frees when it
 * hands the socket to an `'upgrade'`/`'connect'` listener. The request gate's idle deadline and its
 * send-stall check leave such a socket alone (it is no longer HTTP/1.1). If Node stopped setting
 * the field, those two checks would never close a connection: the test catches that.
 */
export function parserAttached(socket: Socket): boolean {
  return (socket as Socket & { parser?: unknown }).parser != null;
}

/**
 * The response Node is writing on a connection (`socket._httpMessage`), so that the client-error
 * handler never writes a second answer over one whose head is already on the wire.
 */
export function responseOnSocket(socket: Socket): { readonly headersSent?: boolean } | undefined {
  const current = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
  return typeof current === 'object' && current !== null ? (current as { headersSent?: boolean }) : undefined;
}

/**
 * Body bytes counted as Node's parser decodes them. Node's parser hands each piece of body (chunked
 * framing removed) to `req.push(chunk)`, and `null` at its end; when the answer is sent and nobody
 * read the body, Node calls `req._dump()`, which makes the parser drop the rest of the body without
 * calling `push` at all. Both are replaced on this request only (own properties): `push` counts,
 * `dump` discards through `push` so the count goes on. If Node stopped calling `push` or `_dump`,
 * the body limit would silently stop applying: the test sends a body and counts it both ways.
 */
export function interceptBody(
  req: IncomingMessage,
  push: (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding) => boolean,
  dump: (this: IncomingMessage) => void,
): void {
  const counted = req as IncomingMessage & { _dump(): void };
  counted.push = push;
  counted._dump = dump;
}

/**
 * Node answers an HTTP/1.1 request without `Host` itself (a bare `400`, without our code or
 * headers) unless the server's `requireHostHeader` option is false. The option is read per request
 * from the server object, so it is set there after the framework built the server; the request gate
 * then answers a missing `Host` (coded `400`, security headers, connection closed).
 */
export function letGateAnswerMissingHost(server: TlsServer): void {
  (server as unknown as { requireHostHeader: boolean }).requireHostHeader = false;
}

/**
 * Limits Node reads from the server object, not only from `createServer`'s options: `maxHeaderSize`
 * (read for each new connection's parser) and `connectionsCheckingInterval` (read when the server
 * starts listening, to arm the timer that enforces `headersTimeout` and `requestTimeout`). Fastify
 * builds the server with its own values; these put ours back before `listen`.
 */
export function setParserLimits(
  server: TlsServer,
  limits: { readonly maxHeaderSize: number; readonly connectionsCheckingInterval: number },
): void {
  const s = server as unknown as HttpServer & {
    maxHeaderSize?: number;
    connectionsCheckingInterval?: number;
  };
  s.maxHeaderSize = limits.maxHeaderSize;
  s.connectionsCheckingInterval = limits.connectionsCheckingInterval;
}

/** The response a request listener was called with, typed for the hooks that take both. */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;
