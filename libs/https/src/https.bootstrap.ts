import type { IncomingHttpHeaders, Server as HttpServer } from 'node:http';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { lookup } from 'node:dns/promises';
import { createServer as createNetServer, isIP, type AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { Logger, type INestApplication, type NestApplicationOptions } from '@nestjs/common';
import { AbstractHttpAdapter, NestFactory, type IEntryNestModule } from '@nestjs/core';
import {
  isShieldError,
  loadTlsBundle,
  ShieldError,
  sameTlsBundle,
  toHttpResponse,
  TlsBundleWatcher,
  type LoadedTlsBundle,
  type TlsFiles,
} from '@inference-shield/core';
import type {
  HttpsBootstrapOptions,
  HttpsCertificateInfo,
  ResolvedHttpsOptions,
} from './https-options.interface.js';
import { resolveHttpsOptions } from './https-options.resolver.js';
import { installConnectionGate, type ConnectionGate } from './connection.gate.js';
import { installClientErrorHandler } from './client-error.handler.js';
import { installRequestGate, securityHeaders, type RequestGate } from './request.gate.js';
import { CONSUMES_ROUTE_CONFIG_KEY, unsupportedMediaType } from './consumes.decorator.js';
import { createRedirectServer } from './redirect.server.js';
import { onSighupReload } from './sighup.registry.js';
import { secureContextOptions } from './tls-policy.js';

/** Which Nest HTTP adapter to build: Express (default) or Fastify, or an `ExpressAdapter` you made. */
export type HttpsAdapterChoice = 'express' | 'fastify' | AbstractHttpAdapter;

/** Where the app listens, once {@link HttpsApp.listen} has resolved. */
export interface HttpsListenResult {
  /** `https://host:port`, with `localhost` for a wildcard bind. */
  readonly url: string;
  readonly port: number;
  /** Port of the plain-HTTP redirect listener, when one is configured. */
  readonly redirectPort?: number;
}

/** An HTTPS-only Nest application and the controls of its TLS listener. */
export interface HttpsApp<T extends INestApplication = INestApplication> {
  /** The Nest application. Start it with {@link HttpsApp.listen}, not `app.listen`. */
  readonly app: T;
  /** The resolved, frozen options. */
  readonly options: ResolvedHttpsOptions;
  /** The server certificate in use (public facts only). */
  certificate(): HttpsCertificateInfo;
  /** Start listening (default port 8443, all interfaces). Resolves once connections are accepted. */
  listen(port?: number, host?: string): Promise<HttpsListenResult>;
  /**
   * Reload the certificate, key, CA and CRL files now. True when the files on disk are valid and in
   * use; false when they were refused (reported; the previous bundle stays in use).
   */
  reload(): boolean;
  /**
   * Graceful shutdown: stop accepting, close idle keep-alive connections, let in-flight requests
   * finish for up to `timeouts.shutdownGracePeriodMs`, destroy what is left, then close the Nest app.
   */
  close(): Promise<void>;
}

const logger = new Logger('ShieldHttps');

function infoOf(bundle: LoadedTlsBundle): HttpsCertificateInfo {
  return Object.freeze({
    fingerprint256: bundle.fingerprint256,
    notBefore: bundle.notBefore,
    notAfter: bundle.notAfter,
    files: bundle.files,
  });
}

function tlsFilesOf(options: ResolvedHttpsOptions): TlsFiles {
  const files: TlsFiles = { cert: options.tls.cert, key: options.tls.key };
  if (options.mtls !== undefined) {
    // The client CA and CRL travel with the server identity: one bundle, checked and swapped as one.
    files.ca = options.mtls.ca;
    if (options.mtls.crl !== undefined) files.crl = options.mtls.crl;
  }
  return files;
}

/** The `https.createServer` options: TLS policy, mTLS and the HTTP limits that can only be set there. */
function serverOptions(bundle: LoadedTlsBundle, options: ResolvedHttpsOptions): HttpsServerOptions {
  return {
    ...secureContextOptions(bundle, options),
    requestCert: options.mtls !== undefined,
    // In `optional` mode the handshake succeeds without a valid certificate; `socket.authorized`
    // then stays false and only a verified certificate ever becomes an identity.
    rejectUnauthorized: options.mtls?.mode !== 'optional',
    handshakeTimeout: options.timeouts.handshakeMs,
    ALPNProtocols: ['http/1.1'],
    maxHeaderSize: options.limits.maxHeaderBytes,
    headersTimeout: options.timeouts.headersMs,
    requestTimeout: options.timeouts.requestMs,
    keepAliveTimeout: options.timeouts.keepAliveMs,
    // Node checks the header and request timeouts only this often (30 s by default): the slowloris gap.
    connectionsCheckingInterval: options.timeouts.connectionsCheckingIntervalMs,
  };
}

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

/** Set the HTTP limits on the server object too: Fastify overwrites some of them after creation. */
function applyServerLimits(server: HttpServer, options: ResolvedHttpsOptions): void {
  server.headersTimeout = options.timeouts.headersMs;
  server.requestTimeout = options.timeouts.requestMs;
  server.keepAliveTimeout = options.timeouts.keepAliveMs;
  server.maxRequestsPerSocket = options.limits.maxRequestsPerSocket;
  // Node closes a connection past this count as it accepts it ('drop'), before the TLS handshake.
  server.maxConnections = options.limits.maxConnections;
  // The socket timeout (send stalls) is the request gate's: it knows which connections are idle.
  const s = server as HttpServer & { maxHeaderSize?: number; connectionsCheckingInterval?: number };
  s.maxHeaderSize = options.limits.maxHeaderBytes;
  s.connectionsCheckingInterval = options.timeouts.connectionsCheckingIntervalMs;
}

async function createNestApp<T extends INestApplication>(
  rootModule: IEntryNestModule,
  options: ResolvedHttpsOptions,
  httpsOptions: HttpsServerOptions,
  adapter: HttpsAdapterChoice,
): Promise<T> {
  const nest = { ...options.nest } as NestApplicationOptions;
  if (adapter === 'fastify') {
    const { FastifyAdapter } = await import('@nestjs/platform-fastify');
    const fastifyAdapter = new FastifyAdapter({
      https: httpsOptions,
      http2: false,
      bodyLimit: options.limits.maxBodyBytes,
      keepAliveTimeout: options.timeouts.keepAliveMs,
      requestTimeout: options.timeouts.requestMs,
      maxRequestsPerSocket: options.limits.maxRequestsPerSocket,
      // The request gate asks clients to close during shutdown; Fastify must not cut them first.
      forceCloseConnections: false,
    } as ConstructorParameters<typeof FastifyAdapter>[0]);
    const app = await NestFactory.create<T>(rootModule, fastifyAdapter, nest);
    refuseUndeclaredBodyTypes(fastifyAdapter.getInstance());
    return app;
  }
  const { ExpressAdapter } = await import('@nestjs/platform-express');
  let expressAdapter: InstanceType<typeof ExpressAdapter>;
  if (adapter === 'express') expressAdapter = new ExpressAdapter();
  else if (adapter instanceof ExpressAdapter) expressAdapter = adapter;
  else {
    // Another adapter builds its server from its own options, out of reach of our TLS policy.
    throw new TypeError(
      '"adapter" must be "express", "fastify" or an ExpressAdapter instance; pass "fastify" to let the bootstrap build the Fastify adapter with the TLS policy',
    );
  }
  const app = await NestFactory.create<T>(rootModule, expressAdapter, {
    ...nest,
    // Nest's HttpsOptions type lacks minVersion/ciphers; it hands the object to https.createServer as is.
    httpsOptions: httpsOptions as NestApplicationOptions['httpsOptions'],
  });
  const express = app as unknown as { disable(setting: string): unknown };
  // Naming the framework helps only an attacker pick exploits.
  express.disable('x-powered-by');
  // Under `no-store` (the default) no client or cache keeps the answer, so an ETag can never be
  // revalidated: Express would hash every response body for nothing. A route that wants
  // validators sets its own Cache-Control and ETag.
  if (/(?:^|[\s,])no-store(?:$|[\s,])/i.test(options.headers.cacheControl)) express.disable('etag');
  useSizedDefaultParsers(expressAdapter, options.limits.maxBodyBytes);
  return app;
}

/** The part of a Fastify instance {@link refuseUndeclaredBodyTypes} uses. */
interface FastifyHooks {
  addHook(
    name: 'onRequest',
    hook: (
      request: { headers: IncomingHttpHeaders; routeOptions?: { config?: unknown } },
      reply: { code(status: number): { headers(h: object): { send(body: unknown): unknown } } },
      done: () => void,
    ) => void,
  ): unknown;
}

/**
 * Fastify parses a body before any Nest interceptor runs, and answers a type it has no parser for
 * with its own 415: a route declared with `@Consumes` is checked here instead, before parsing, and
 * answered `415 ERR_UNSUPPORTED_MEDIA_TYPE`. Other routes are untouched.
 */
function refuseUndeclaredBodyTypes(fastify: unknown): void {
  const refusal = toHttpResponse(new ShieldError('ERR_UNSUPPORTED_MEDIA_TYPE'));
  const declared = new WeakMap<object, ReadonlySet<string> | null>();
  (fastify as FastifyHooks).addHook('onRequest', (request, reply, done) => {
    const config = request.routeOptions?.config;
    if (typeof config !== 'object' || config === null) return done();
    let types = declared.get(config);
    if (types === undefined) {
      const list = (config as Record<string, unknown>)[CONSUMES_ROUTE_CONFIG_KEY];
      types = Array.isArray(list) ? new Set(list as string[]) : null;
      declared.set(config, types);
    }
    if (types === null || !unsupportedMediaType(types, request.headers['content-type'])) return done();
    reply
      .code(refusal.status)
      .headers({ 'content-type': 'application/json; charset=utf-8', ...refusal.headers })
      .send(JSON.stringify(refusal.body));
  });
}

/** The parts of Nest's `ExpressAdapter` that register its default body parsers. */
interface ExpressParserRegistry {
  registerParserMiddleware(prefix?: string, rawBody?: boolean): void;
  isMiddlewareApplied(name: string): boolean;
  useBodyParser(type: string, rawBody: boolean, options: object): unknown;
}

/**
 * The host's parsing stays the host's: Nest registers its default parsers (JSON, and URL-encoded
 * forms with `extended: true`) at `init`, for every route, unless `nest.bodyParser` is `false`, and
 * skips one the host already applied (`app.useBodyParser`). Only their size changes: body-parser's
 * 100 kB becomes `limits.maxBodyBytes`, the one body limit of the bootstrap. No other parser is
 * installed; our own routes declare the types they take with `@Consumes`.
 */
function useSizedDefaultParsers(adapter: unknown, limit: number): void {
  const registry = adapter as ExpressParserRegistry;
  registry.registerParserMiddleware = (_prefix?: string, rawBody = false): void => {
    if (!registry.isMiddlewareApplied('jsonParser')) registry.useBodyParser('json', rawBody, { limit });
    if (!registry.isMiddlewareApplied('urlencodedParser')) {
      registry.useBodyParser('urlencoded', rawBody, { limit, extended: true });
    }
  };
}

/**
 * The address Fastify must bind. Given `localhost` (its default), Fastify also listens on every
 * other address the name resolves to, each on a second server it builds itself: without the
 * plaintext gate, the limits or certificate rotation. So Fastify only ever gets one IP address:
 * a host name is resolved once, as Node does for Express; no host means every interface.
 */
async function fastifyHost(host: string | undefined): Promise<string> {
  if (host === undefined) return (await ipv6Available()) ? '::' : '0.0.0.0';
  if (isIP(host) !== 0) return host;
  return (await lookup(host)).address;
}

async function ipv6Available(): Promise<boolean> {
  const probe = createNetServer();
  return new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(0, '::', () => probe.close(() => resolve(true)));
  });
}

/**
 * Create a Nest application that serves HTTPS only, for Express (default) or Fastify. Before Nest
 * starts, the options are validated (`TypeError` naming the field) and the certificate, key, CA
 * and CRL are read and checked (`ShieldError` `ERR_CERT_*` naming the file and the problem): a bad
 * configuration never gets as far as a listening socket. The server then applies the TLS policy
 * (TLS 1.2+, ECDHE+AEAD suites, no renegotiation), answers plain HTTP with a `400`, adds the
 * security headers, enforces size and time limits, and reloads certificates without a restart.
 * Coded refusals thrown inside Nest are answered by `ShieldExceptionFilter`, which `IdentityModule`
 * registers.
 *
 * @example
 * const https = await createHttpsApp(AppModule, { tls: { cert: 'pki/localhost.pem', key: 'pki/localhost-key.pem' } });
 * const { url } = await https.listen(8443);
 */
export async function createHttpsApp<T extends INestApplication = INestApplication>(
  rootModule: IEntryNestModule,
  httpsOptions: HttpsBootstrapOptions,
  adapter: HttpsAdapterChoice = 'express',
): Promise<HttpsApp<T>> {
  const options = resolveHttpsOptions(httpsOptions);
  if (adapter !== 'express' && adapter !== 'fastify' && !(adapter instanceof AbstractHttpAdapter)) {
    throw new TypeError('"adapter" must be "express", "fastify" or an ExpressAdapter instance');
  }
  const files = tlsFilesOf(options);
  let current = loadTlsBundle(files, { usage: 'server' });

  const app = await createNestApp<T>(rootModule, options, serverOptions(current, options), adapter);
  const server: unknown = app.getHttpServer();
  if (!(server instanceof TlsServer)) {
    await app.close();
    throw new Error('the Nest HTTP adapter did not create a TLS server; refusing to serve plaintext');
  }
  const httpServer = server as TlsServer & HttpServer;
  let connections: ConnectionGate;
  let requests: RequestGate;
  try {
    applyServerLimits(httpServer, options);
    // Node closes a connection past maxConnections itself and tells us with 'drop'.
    httpServer.on(
      'drop',
      refusedConnectionReporter(`limits.maxConnections (${options.limits.maxConnections})`),
    );
    connections = installConnectionGate(httpServer, options.timeouts.handshakeMs, {
      maxPerAddress: options.limits.maxConnectionsPerAddress,
      onRefused: refusedConnectionReporter(
        `limits.maxConnectionsPerAddress (${options.limits.maxConnectionsPerAddress}) for one address`,
      ),
    });
    requests = installRequestGate(httpServer, options);
    installClientErrorHandler(httpServer, securityHeaders(options));
    // ShieldExceptionFilter is registered in one place, by IdentityModule (APP_FILTER).
  } catch (err) {
    await app.close();
    throw err;
  }

  const apply = (next: LoadedTlsBundle): void => {
    // setSecureContext rebuilds the context from these options alone: the whole policy is passed.
    httpServer.setSecureContext(secureContextOptions(next, options));
    current = next;
    logger.log(
      `TLS certificate reloaded from ${next.files.cert}: sha256 ${next.fingerprint256}, valid until ${next.notAfter.toISOString()}`,
    );
    try {
      options.reload.onReload?.(infoOf(next));
    } catch (err) {
      // The new certificate is in use; a failing notification must not read as a refused reload.
      logger.warn(`reload.onReload failed: ${err instanceof Error ? err.name : typeof err}`);
    }
  };
  const report = (err: ShieldError): void => {
    // Loader messages name the file and the problem, never key material.
    logger.error(`TLS certificate reload refused, the previous certificate stays in use: ${err.message}`);
    options.reload.onReloadError?.(err);
  };
  const asShieldError = (err: unknown): ShieldError =>
    isShieldError(err)
      ? err
      : new ShieldError('ERR_CERT_INVALID', {
          message: 'the certificate bundle could not be applied',
          cause: err,
        });

  let watcher: TlsBundleWatcher | undefined;
  if (options.reload.watch) {
    watcher = new TlsBundleWatcher(files, {
      usage: 'server',
      debounceMs: options.reload.debounceMs,
      // A bundle apply() refuses is reported by the watcher, which keeps the previous one.
      onReload: apply,
      onError: report,
    });
    try {
      watcher.start(current);
    } catch (err) {
      // Rotation was asked for and cannot work (an unwatchable folder): refuse to start.
      await app.close();
      throw err;
    }
  }

  const reload = (): boolean => {
    if (watcher !== undefined) return watcher.reload() !== undefined;
    try {
      const next = loadTlsBundle(files, { usage: 'server' });
      if (!sameTlsBundle(current, next)) apply(next);
      return true;
    } catch (err) {
      report(asShieldError(err));
      return false;
    }
  };
  const stopSighup = options.reload.sighup ? onSighupReload(() => void reload()) : undefined;

  let listening = false;
  let redirectServer: HttpServer | undefined;
  let closing: Promise<void> | undefined;

  const shutdown = async (): Promise<void> => {
    stopSighup?.();
    watcher?.close();
    requests.startClosing();
    if (redirectServer !== undefined) {
      redirectServer.close();
      redirectServer.closeAllConnections();
    }
    if (listening) {
      // Stops accepting; Node also closes idle keep-alive connections here. Busy ones are told
      // `Connection: close` by the request gate and end after their response.
      httpServer.close();
      httpServer.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.timeouts.shutdownGracePeriodMs);
      });
      await Promise.race([connections.drained(), grace]);
      clearTimeout(timer);
      // A stream still open ends with an event its client can read, not with a reset.
      await requests.endEventStreams();
      httpServer.closeAllConnections();
      connections.destroyAll();
    }
    await app.close();
  };

  return {
    app,
    options,
    certificate: () => infoOf(current),
    reload,
    async listen(port = 8443, host?: string): Promise<HttpsListenResult> {
      if (closing !== undefined) throw new Error('the HTTPS app is closed');
      if (listening) throw new Error('the HTTPS app is already listening');
      listening = true;
      try {
        if (adapter === 'fastify') await app.listen(port, await fastifyHost(host));
        else if (host === undefined) await app.listen(port);
        else await app.listen(port, host);
      } catch (err) {
        listening = false;
        throw err;
      }
      const address = httpServer.address() as AddressInfo;
      const shown = host === undefined || host === '0.0.0.0' || host === '::' ? 'localhost' : host;
      const url = `https://${shown.includes(':') ? `[${shown}]` : shown}:${address.port}`;
      if (options.redirect === undefined) return { url, port: address.port };
      const redirect = createRedirectServer(options, address.port);
      redirectServer = redirect;
      const bindHost = options.redirect.host ?? host;
      await new Promise<void>((resolve, reject) => {
        redirect.once('error', reject);
        redirect.listen(options.redirect?.port, bindHost, () => {
          redirect.removeListener('error', reject);
          resolve();
        });
      });
      return { url, port: address.port, redirectPort: (redirect.address() as AddressInfo).port };
    },
    close(): Promise<void> {
      closing ??= shutdown();
      return closing;
    },
  };
}
