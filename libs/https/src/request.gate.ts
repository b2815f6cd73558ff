import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { Socket as NetSocket, type Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { toHttpResponse, ShieldError } from '@inference-shield/core';
import type { ResolvedHttpsOptions } from './https-options.interface.js';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Per connection: responses not yet done, when the last one ended, and the idle deadline's timer. */
interface IdleState {
  inFlight: number;
  idleSince: number;
  timer: NodeJS.Timeout | undefined;
  readonly socket: Socket;
  readonly limitMs: number;
}

/** Node frees `socket.parser` when it hands the socket to an `upgrade`/`connect` listener. */
function stillHttp(socket: Socket): boolean {
  return (socket as Socket & { parser?: unknown }).parser != null;
}

/**
 * The idle deadline fired: close the connection if it is still idle and has been for the whole
 * limit (a request that started and ended since then re-armed the timer with `refresh()`, which
 * may have been cheaper than this check; re-arm for what is left).
 */
function onIdleDeadline(state: IdleState): void {
  if (state.inFlight > 0 || state.socket.destroyed) return;
  const left = state.idleSince + state.limitMs - performance.now();
  if (left > 1) {
    state.timer = setTimeout(onIdleDeadline, left, state);
    state.timer.unref();
    return;
  }
  if (stillHttp(state.socket)) state.socket.destroy();
}

/**
 * Closes a connection whose client stopped reading with a TCP reset: a plain close would leave the
 * kernel sending what is queued to a client that never takes it (an orphaned socket, its buffers
 * held), and the client would never learn. The reset goes on the TCP socket under the TLS one.
 */
function resetConnection(socket: Socket): void {
  const tcp = (socket as Socket & { _parent?: unknown })._parent;
  if (tcp instanceof NetSocket && !tcp.destroyed) {
    try {
      tcp.resetAndDestroy();
    } catch {
      // Not a TCP handle (a test double, a pipe): the plain close below still frees the slot.
    }
  }
  socket.destroy();
}

/** What the bootstrap keeps of the request gate of one server. */
export interface RequestGate {
  /** From now on every response carries `Connection: close` (graceful shutdown). */
  startClosing(): void;
}

/** The security headers of every response, computed once from the options. */
export function securityHeaders(options: ResolvedHttpsOptions): readonly (readonly [string, string])[] {
  const h = options.headers;
  let hsts = `max-age=${h.hstsMaxAgeSeconds}`;
  if (h.hstsIncludeSubDomains) hsts += '; includeSubDomains';
  if (h.hstsPreload) hsts += '; preload';
  return Object.freeze([
    // RFC 6797: browsers then refuse plain HTTP (and certificate click-through) for this host.
    Object.freeze(['Strict-Transport-Security', hsts] as const),
    // Stops a browser from sniffing a JSON answer (possibly echoing input) into HTML or script.
    Object.freeze(['X-Content-Type-Options', 'nosniff'] as const),
    // Inference answers and errors are per caller: no shared or browser cache may keep them.
    Object.freeze(['Cache-Control', h.cacheControl] as const),
  ]);
}

/**
 * Wraps the framework's request listener (Express app or Fastify handler) so that, before it runs:
 * the security headers are set on the response (the handler may still override `Cache-Control`);
 * a request that announces a body larger than the limit gets `413` and never reaches a handler
 * (the adapters' body parsers enforce the same limit on chunked bodies); a request carrying
 * `Expect: 100-continue` is only told to continue when its announced size fits (any other
 * expectation gets Node's `417`, without reaching a handler).
 */
export function installRequestGate(server: TlsServer, options: ResolvedHttpsOptions): RequestGate {
  const listeners = server.listeners('request');
  const [appListener] = listeners;
  if (listeners.length !== 1 || typeof appListener !== 'function') {
    throw new Error(`expected the HTTPS server to have one request listener, found ${listeners.length}`);
  }
  const handler = appListener as RequestListener;
  server.removeListener('request', handler);

  const headers = securityHeaders(options);
  const maxBody = options.limits.maxBodyBytes;
  const tooLarge = toHttpResponse(new ShieldError('ERR_BODY_TOO_LARGE'));
  const tooLargeBody = JSON.stringify(tooLarge.body);
  // Time a kept-alive connection gets to start its next request (keepAliveMs) and send its head
  // (headersMs), plus one checking interval so Node's own 408 comes first when it applies.
  const idleLimitMs =
    options.timeouts.keepAliveMs +
    options.timeouts.headersMs +
    options.timeouts.connectionsCheckingIntervalMs;
  const idle = new WeakMap<Socket, IdleState>();
  let closing = false;

  /** A response of the connection ended: when it was the last one, the idle deadline starts. */
  function onResponseClose(this: ServerResponse): void {
    const state = idle.get(this.req.socket);
    if (state === undefined) return;
    state.inFlight -= 1;
    // Pipelined requests: wait for the last response of the connection.
    if (state.inFlight > 0 || state.socket.destroyed) return;
    state.idleSince = performance.now();
    if (state.timer === undefined) {
      state.timer = setTimeout(onIdleDeadline, idleLimitMs, state);
      state.timer.unref();
    } else {
      // Re-arms the same timer: no allocation per request on a kept-alive connection.
      state.timer.refresh();
    }
  }

  /**
   * Slowloris through keep-alive: between requests Node only has the keep-alive timeout, an *idle*
   * timer that every received byte restarts, and the parser skips bare CRLF/LF before a request line
   * (RFC 9112 §2.2) without starting the headers timer. "\r\n" every few seconds used to hold a
   * connection forever. This deadline, armed when the connection's last response ends and ignored
   * while a request is in flight, is absolute: stray bytes do not extend it. One timer per
   * connection, re-armed rather than re-created.
   */
  function trackIdle(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    let state = idle.get(socket);
    if (state === undefined) {
      const created: IdleState = {
        inFlight: 0,
        idleSince: 0,
        timer: undefined,
        socket,
        limitMs: idleLimitMs,
      };
      idle.set(socket, created);
      socket.once('close', () => clearTimeout(created.timer));
      state = created;
    }
    state.inFlight += 1;
    res.on('close', onResponseClose);
  }

  function refuseTooLarge(req: IncomingMessage, res: ServerResponse): void {
    res.statusCode = tooLarge.status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(tooLargeBody));
    // Close rather than read a body we already refused; the client learns why from the 413.
    res.setHeader('Connection', 'close');
    for (const [name, value] of Object.entries(tooLarge.headers)) res.setHeader(name, value);
    res.end(tooLargeBody);
    req.resume();
  }

  function gate(req: IncomingMessage, res: ServerResponse): boolean {
    trackIdle(req, res);
    for (const [name, value] of headers) res.setHeader(name, value);
    if (closing) res.setHeader('Connection', 'close');
    const length = req.headers['content-length'];
    // Node's parser has already refused a non-numeric or repeated Content-Length.
    if (length !== undefined && Number(length) > maxBody) {
      refuseTooLarge(req, res);
      return false;
    }
    return true;
  }

  /**
   * Node's socket timeout: no byte read or written for `sendStallMs` (or, between requests, for
   * the keep-alive timeout Node sets). With this listener Node never closes on it by itself, so:
   * a connection with no request in flight is closed, as Node would have; one with a request in
   * flight only when it has bytes waiting that its client does not take (it stopped reading).
   * A handler still working, with nothing to send yet, is left alone, and Node re-arms the timer
   * at the socket's next read or write. Without this, a client that never reads held its
   * connection (and a `maxConnections` slot) for ever.
   */
  function onSocketTimeout(socket: Socket): void {
    const state = idle.get(socket);
    const busy = state !== undefined && state.inFlight > 0;
    if (!stillHttp(socket)) return;
    if (!busy) socket.destroy();
    else if (socket.writableLength > 0 || socket.writableNeedDrain) resetConnection(socket);
  }

  (server as unknown as HttpServer).setTimeout(options.timeouts.sendStallMs, onSocketTimeout);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (gate(req, res)) handler.call(server, req, res);
  });
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!gate(req, res)) return;
    res.writeContinue();
    handler.call(server, req, res);
  });
  return {
    startClosing() {
      closing = true;
    },
  };
}
