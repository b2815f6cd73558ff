import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Server as TlsServer } from 'node:tls';
import { toHttpResponse, ShieldError } from '@inference-shield/core/internal';
import type { ResolvedHttpsOptions } from './https-options.interface.js';
import {
  interceptBody,
  letGateAnswerMissingHost,
  parserAttached,
  tcpSocketUnder,
  type RequestListener,
} from '@inference-shield/core/internal';

/**
 * Per connection: responses not yet done, when the last one ended, and the idle deadline's timer;
 * and, for the request whose body is arriving (bodies arrive one at a time, in order, even when
 * requests are pipelined), its body bytes so far, its response, and whether it was refused.
 */
interface IdleState {
  inFlight: number;
  idleSince: number;
  timer: NodeJS.Timeout | undefined;
  readonly socket: Socket;
  readonly limitMs: number;
  bodyBytes: number;
  bodyResponse: ServerResponse | undefined;
  bodyRefused: boolean;
}

/** How long a refused connection may take to read its answer before it is destroyed. */
const REFUSAL_LINGER_MS = 1000;

/**
 * RFC 9112 §3.2 / RFC 9110 §7.2: `uri-host [ ":" port ]`, an IP literal in brackets or a reg-name
 * (empty allowed: a request whose target has no authority sends an empty Host).
 */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[\w.~!$&'()*+,;=%-]*)(?::[0-9]{0,5})?$/;

/** What a request is refused for before any handler runs, if anything. */
function framingFault(req: IncomingMessage): boolean {
  // Node keeps only the first of two Host lines in `headers`; the raw list has them all.
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts += 1;
  }
  const http11 = req.httpVersionMajor === 1 && req.httpVersionMinor === 1;
  // RFC 9112 §3.2: no Host on HTTP/1.1, more than one Host, or an invalid one: 400.
  if (hosts > 1 || (hosts === 0 && http11)) return true;
  if (hosts === 1 && !HOST_VALUE.test(req.headers.host ?? '')) return true;
  // RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding has faulty framing (a smuggling shape): the
  // message must not be trusted, and the connection is closed.
  return (
    req.httpVersionMajor === 1 && req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined
  );
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
  if (parserAttached(state.socket)) state.socket.destroy();
}

/**
 * Closes a connection whose client stopped reading with a TCP reset: a plain close would leave the
 * kernel sending what is queued to a client that never takes it (an orphaned socket, its buffers
 * held), and the client would never learn. The reset goes on the TCP socket under the TLS one.
 */
function resetConnection(socket: Socket): void {
  const tcp = tcpSocketUnder(socket);
  if (tcp !== undefined && !tcp.destroyed) {
    try {
      tcp.resetAndDestroy();
    } catch {
      // Not a TCP handle (a test double, a pipe): the plain close below still frees the slot.
    }
  }
  socket.destroy();
}

/** How long {@link RequestGate.endEventStreams} waits for the final events to be written. */
const STREAM_END_MS = 1000;

function ignore(): void {}

/** What the bootstrap keeps of the request gate of one server. */
export interface RequestGate {
  /**
   * The drain began (graceful shutdown): from now on every response whose head is not yet written,
   * those of requests already parsed included, carries `Connection: close`, and its connection is
   * closed after it.
   */
  startClosing(): void;
  /**
   * The listener has closed: a connection is closed as soon as its last answer in flight ends
   * (one whose head was written before the drain began could not say `Connection: close`).
   */
  listenerClosed(): void;
  /**
   * The end of the shutdown grace period: every server-sent event stream still open gets a final
   * `data: {"error":{"code":"ERR_SHUTTING_DOWN",...}}` event and is ended, so its client reads why
   * the stream stopped instead of a TCP reset. Resolves once they are written (at most 1 s).
   */
  endEventStreams(): Promise<void>;
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
 * Runs before `next` (the request hooks, then the framework's request listener) on every request:
 * the security headers are set on the response (the handler may still override `Cache-Control`);
 * a request with no `Host` (HTTP/1.1), several, or an invalid one, or an HTTP/1.0 request with
 * `Transfer-Encoding`, gets a coded `400` and the connection is closed; a request that announces a
 * body larger than the limit gets `413` and never reaches a handler; a request carrying
 * `Expect: 100-continue` is only told to continue when its announced size fits (any other
 * expectation gets Node's `417`, without reaching a handler).
 *
 * Body bytes are counted as they arrive, whatever reads them (a body parser, a handler, or Node
 * discarding a body nobody read) and however they are framed: once a body passes the limit it gets
 * `413` (when no answer has started) and the connection is closed, with at most one more read of
 * the socket (64 KiB) taken in. Body parsers refuse too late for this: body-parser reads a refused
 * body to its end, so a chunked stream that never ended held the connection until the request
 * timeout.
 */
export function installRequestGate(
  server: TlsServer,
  options: ResolvedHttpsOptions,
  next: RequestListener,
): RequestGate {
  const headers = securityHeaders(options);
  const maxBody = options.limits.maxBodyBytes;
  const tooLarge = toHttpResponse(new ShieldError('ERR_BODY_TOO_LARGE'));
  const tooLargeBody = JSON.stringify(tooLarge.body);
  const badRequest = toHttpResponse(new ShieldError('ERR_BAD_REQUEST'));
  const badRequestBody = JSON.stringify(badRequest.body);
  // Node would answer a missing Host itself: a bare 400, without our code or headers.
  letGateAnswerMissingHost(server);
  // Time a kept-alive connection gets to start its next request (keepAliveMs) and send its head
  // (headersMs), plus one checking interval so Node's own 408 comes first when it applies.
  const idleLimitMs =
    options.timeouts.keepAliveMs +
    options.timeouts.headersMs +
    options.timeouts.connectionsCheckingIntervalMs;
  const idle = new WeakMap<Socket, IdleState>();
  // Responses not yet closed: at the end of a graceful shutdown, event streams among them are ended.
  const open = new Set<ServerResponse>();
  const shutdownEvent = `data: ${JSON.stringify({ error: toHttpResponse(new ShieldError('ERR_SHUTTING_DOWN')).body })}\n\n`;
  // Draining (from `close()`): every answer not yet started says `Connection: close`.
  let closing = false;
  // The listener has closed (the drain delay is over): connections are closed once idle.
  let stopped = false;

  /** A response of the connection ended: when it was the last one, the idle deadline starts. */
  function onResponseClose(this: ServerResponse): void {
    open.delete(this);
    const state = idle.get(this.req.socket);
    if (state === undefined) return;
    state.inFlight -= 1;
    // Pipelined requests: wait for the last response of the connection.
    if (state.inFlight > 0 || state.socket.destroyed) return;
    if (stopped) {
      // The listener has closed: an answer whose head went out before the drain began (a stream)
      // could not say `Connection: close`, and its connection is now idle; Node's
      // `closeIdleConnections()` only saw it busy. Close it after what is queued is written.
      state.socket.destroySoon();
      return;
    }
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
  function trackIdle(req: IncomingMessage, res: ServerResponse): IdleState {
    const socket = req.socket;
    let state = idle.get(socket);
    if (state === undefined) {
      const created: IdleState = {
        inFlight: 0,
        idleSince: 0,
        timer: undefined,
        socket,
        limitMs: idleLimitMs,
        bodyBytes: 0,
        bodyResponse: undefined,
        bodyRefused: false,
      };
      idle.set(socket, created);
      socket.once('close', () => clearTimeout(created.timer));
      state = created;
    }
    state.inFlight += 1;
    open.add(res);
    res.on('close', onResponseClose);
    return state;
  }

  /**
   * This answer ends its connection (RFC 9112 §9.6): the client is told `Connection: close`, so a
   * pooled keep-alive connection is not used again, and Node closes the connection once the answer
   * is written (the header is what makes Node do so; `shouldKeepAlive` is its own flag for it, kept
   * in step). Set before the head is written; a handler that sets `Connection` itself overrides it.
   */
  function closeAfter(res: ServerResponse): void {
    res.setHeader('Connection', 'close');
    res.shouldKeepAlive = false;
  }

  /** Answer a refusal and close: the rest of the request is not read. */
  function refuse(
    res: ServerResponse,
    answer: { status: number; headers: Readonly<Record<string, string>> },
    body: string,
  ): void {
    res.statusCode = answer.status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    // Close rather than read a body we refused; the client learns why from the answer.
    res.setHeader('Connection', 'close');
    for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
    res.end(body);
  }

  /**
   * Stands in for `req.push`, which Node's parser calls with each piece of body it decodes (after
   * chunked framing is removed): the bytes are counted here, before any reader sees them.
   */
  function countedPush(this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
    const state = idle.get(this.socket);
    if (state === undefined) return Readable.prototype.push.call(this, chunk, encoding);
    // A refused body never ends normally (its end may be in the same read as the chunk past the
    // limit): a parser must not act on part of it.
    if (state.bodyRefused) return false;
    if (chunk === null) return Readable.prototype.push.call(this, chunk);
    state.bodyBytes += (chunk as Buffer).length;
    if (state.bodyBytes <= maxBody) return Readable.prototype.push.call(this, chunk, encoding);
    state.bodyRefused = true;
    refuseOverflow(this, state);
    // False makes Node's parser stop reading the socket.
    return false;
  }

  /**
   * Stands in for Node's `req._dump` (a body nobody read, after the answer): Node's own marks the
   * request so that its parser drops the rest of the body without calling `push`, uncounted, for as
   * long as the body lasts. This one discards it through `push`, so the limit still applies.
   */
  function countedDump(this: IncomingMessage): void {
    if (idle.get(this.socket)?.bodyRefused === true) return;
    this.removeAllListeners('data');
    this.resume();
  }

  /**
   * A body passed the limit: `413` if nothing was answered yet, and the connection is closed. Whoever
   * was reading the body gets an error once the answer is out, never the end of the body.
   */
  function refuseOverflow(req: IncomingMessage, state: IdleState): void {
    const res = state.bodyResponse;
    const socket = state.socket;
    const abandon = (): void => {
      req.destroy(new ShieldError('ERR_BODY_TOO_LARGE'));
      socket.destroy();
    };
    if (res !== undefined && !res.headersSent && !res.writableEnded) {
      // Node ends the connection once this is written (Connection: close).
      refuse(res, tooLarge, tooLargeBody);
      res.once('close', abandon);
    } else if (res === undefined || res.writableFinished) {
      // Answered already (a route that did not read the body): end after the answer.
      socket.end();
    } else {
      // An answer is under way and cannot be completed honestly.
      abandon();
    }
    // An answer queued behind a pipelined one, or a client that does not close.
    setTimeout(abandon, REFUSAL_LINGER_MS).unref();
  }

  function gate(req: IncomingMessage, res: ServerResponse): boolean {
    const state = trackIdle(req, res);
    for (const [name, value] of headers) res.setHeader(name, value);
    if (closing) closeAfter(res);
    if (framingFault(req)) {
      state.bodyRefused = true;
      refuse(res, badRequest, badRequestBody);
      return false;
    }
    const length = req.headers['content-length'];
    // Node's parser has already refused a non-numeric or repeated Content-Length.
    if (length !== undefined && Number(length) > maxBody) {
      state.bodyRefused = true;
      refuse(res, tooLarge, tooLargeBody);
      return false;
    }
    if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
      // This request's body is the one arriving now (bodies arrive in order).
      state.bodyBytes = 0;
      state.bodyResponse = res;
      state.bodyRefused = false;
      interceptBody(req, countedPush, countedDump);
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
    if (!parserAttached(socket)) return;
    if (!busy) socket.destroy();
    else if (socket.writableLength > 0 || socket.writableNeedDrain) resetConnection(socket);
  }

  (server as unknown as HttpServer).setTimeout(options.timeouts.sendStallMs, onSocketTimeout);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (gate(req, res)) next(req, res);
  });
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!gate(req, res)) return;
    res.writeContinue();
    next(req, res);
  });
  return {
    startClosing() {
      closing = true;
      // Requests already parsed whose answer has not started (a handler still working, pipelined
      // requests queued behind it) are told too: only an answer whose head is out cannot be.
      for (const res of open) if (!res.headersSent) closeAfter(res);
    },
    listenerClosed() {
      stopped = true;
    },
    async endEventStreams() {
      const ended: Promise<unknown>[] = [];
      for (const res of open) {
        if (!res.headersSent || res.writableEnded || res.destroyed) continue;
        const type = res.getHeader('content-type');
        if (typeof type !== 'string' || !/^\s*text\/event-stream\s*(?:;|$)/i.test(type)) continue;
        // The handler may write again before it sees the close: that must not be an uncaught error.
        res.on('error', ignore);
        ended.push(new Promise((resolve) => res.once('close', resolve)));
        res.end(shutdownEvent);
      }
      if (ended.length === 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(ended),
        new Promise((resolve) => {
          timer = setTimeout(resolve, STREAM_END_MS);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}
