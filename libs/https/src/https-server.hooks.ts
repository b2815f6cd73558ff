import type { Server as HttpServer } from 'node:http';
import type { Server as TlsServer } from 'node:tls';
import { Logger } from '@nestjs/common';
import type { ResolvedHttpsOptions } from './https-options.interface.js';
import { installClientErrorHandler } from './client-error.handler.js';
import { installConnectionGate, type ConnectionGate } from './connection.gate.js';
import { setParserLimits, type RequestListener } from '@inference-shield/core/internal';
import { HttpsRequestHooks } from './request-hooks.js';
import { HttpsTelemetry } from './https.telemetry.js';
import { installRequestGate, securityHeaders, type RequestGate } from './request.gate.js';

const logger = new Logger('ShieldHttps');

const DROP_REPORT_WINDOW_MS = 10_000;

/**
 * Reports connections refused at a connection limit (`what`, e.g. "limits.maxConnections (10000)"):
 * the first at once, then at most one summary per 10 s (a flood must not flood the log too).
 * Counts only: no address is logged. Returns the function to call per refused connection.
 */
function refusedConnectionReporter(what: string): () => void {
  let suppressed = 0;
  let window: NodeJS.Timeout | undefined;
  const closeWindow = (): void => {
    window = undefined;
    if (suppressed === 0) return;
    logger.warn(`${suppressed} more connections refused in 10 s: ${what} reached`);
    suppressed = 0;
    window = setTimeout(closeWindow, DROP_REPORT_WINDOW_MS);
    window.unref();
  };
  return () => {
    if (window !== undefined) {
      suppressed += 1;
      return;
    }
    logger.warn(`connection refused: ${what} reached`);
    window = setTimeout(closeWindow, DROP_REPORT_WINDOW_MS);
    window.unref();
  };
}

/** The framework's request listener, taken off the server: the request gate calls it, last. */
function takeFrameworkListener(server: TlsServer): RequestListener {
  const listeners = server.listeners('request');
  const [listener] = listeners;
  if (listeners.length !== 1 || typeof listener !== 'function') {
    throw new Error(`expected the HTTPS server to have one request listener, found ${listeners.length}`);
  }
  server.removeListener('request', listener as RequestListener);
  // Node calls a request listener with `this` = the server; the framework keeps that. Not
  // `listener.bind`: an Express app has a `bind` method of its own (the HTTP BIND verb's route).
  return Function.prototype.bind.call(listener, server) as RequestListener;
}

/**
 * Everything the bootstrap puts on the Node server its adapter built, installed once and in one
 * order, which is also the order a connection and each request meet them:
 *
 * 1. **connection gate** (`'connection'`, in front of TLS's own listener): per-address cap, the
 *    handshake deadline from accept, plain HTTP answered `400 ERR_HTTP_TO_HTTPS`, garbage closed;
 *    Node's `maxConnections` (`'drop'`, reported) comes before it;
 * 2. **TLS**: Node's own handshake with the TLS policy and the client certificate check;
 * 3. **request gate** (`'request'` / `'checkContinue'`): security headers, `Host` and framing
 *    checks, announced and counted body size, `100 Continue`, idle and send-stall deadlines;
 * 4. **request hooks** added through {@link requestHooks} (the one seam for other packages, e.g.
 *    identity's early refusal), in the order they were added;
 * 5. **the framework**: the request listener the adapter installed (Express's app, Fastify's handler).
 *
 * Node's parser errors (`'clientError'`) are answered by one handler, replacing the framework's.
 * Each reliance on Node internals is in core's node-internals.ts (core/internal).
 */
export class HttpsServerHooks {
  private constructor(
    private readonly connections: ConnectionGate,
    private readonly requests: RequestGate,
    /** The seam: hooks run after the request gate, before the framework. */
    readonly requestHooks: HttpsRequestHooks,
  ) {}

  /** Install every hook on `server`, or throw (the caller closes the app) when one cannot be. */
  static install(server: TlsServer & HttpServer, options: ResolvedHttpsOptions): HttpsServerHooks {
    // Fastify overwrites some limits after it creates the server: they are set on the server again.
    server.headersTimeout = options.timeouts.headersMs;
    server.requestTimeout = options.timeouts.requestMs;
    server.keepAliveTimeout = options.timeouts.keepAliveMs;
    server.maxRequestsPerSocket = options.limits.maxRequestsPerSocket;
    // Node closes a connection past this count as it accepts it ('drop'), before the TLS handshake.
    server.maxConnections = options.limits.maxConnections;
    // The socket timeout (send stalls) is the request gate's: it knows which connections are idle.
    setParserLimits(server, {
      maxHeaderSize: options.limits.maxHeaderBytes,
      connectionsCheckingInterval: options.timeouts.connectionsCheckingIntervalMs,
    });
    server.on('drop', refusedConnectionReporter(`limits.maxConnections (${options.limits.maxConnections})`));
    const reportPerAddress = refusedConnectionReporter(
      `limits.maxConnectionsPerAddress (${options.limits.maxConnectionsPerAddress}) for one address`,
    );

    const connections = installConnectionGate(server, options.timeouts.handshakeMs, {
      maxPerAddress: options.limits.maxConnectionsPerAddress,
      onRefused: () => {
        reportPerAddress();
        telemetry.refused('maxConnectionsPerAddress');
      },
    });
    // OpenTelemetry (API only): per connection or at collection time, never per request.
    const telemetry = new HttpsTelemetry(server, () => connections.open());
    server.on('drop', () => telemetry.refused('maxConnections'));
    const hooks = HttpsRequestHooks.attach(server, takeFrameworkListener(server));
    const requests = installRequestGate(server, options, hooks.run);
    installClientErrorHandler(server, securityHeaders(options));
    return new HttpsServerHooks(connections, requests, hooks);
  }

  /**
   * The drain began: from now on every response not yet started carries `Connection: close` and
   * ends its connection (graceful shutdown).
   */
  startClosing(): void {
    this.requests.startClosing();
  }

  /** The listener has closed: each connection is closed once its last answer in flight ends. */
  listenerClosed(): void {
    this.requests.listenerClosed();
  }

  /** Resolves once no connection is open. */
  drained(): Promise<void> {
    return this.connections.drained();
  }

  /** Ends each server-sent event stream still open with a final `ERR_SHUTTING_DOWN` event. */
  endEventStreams(): Promise<void> {
    return this.requests.endEventStreams();
  }

  /** Destroy every connection still open (the end of a graceful shutdown). */
  destroyAll(): void {
    this.connections.destroyAll();
  }
}
