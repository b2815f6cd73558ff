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
} from '@inference-shield/core/internal';
import { describeKeyExchangeGroups, loadCaSource } from '@inference-shield/core/internal';
import type {
  HttpsBootstrapOptions,
  HttpsCertificateInfo,
  ResolvedHttpsOptions,
} from './https-options.interface.js';
import { resolveHttpsOptions } from './https-options.resolver.js';
import { loadTlsSource } from './tls-source.js';
import { observeServerCertificates } from './https.telemetry.js';
import { HttpsServerHooks } from './https-server.hooks.js';
import { CONSUMES_ROUTE_CONFIG_KEY, unsupportedMediaType } from './consumes.decorator.js';
import { createRedirectServer } from './redirect.server.js';
import { onSighupReload } from './sighup.registry.js';
import { secureContextOptions } from './tls-policy.js';
import { tlsValidityOf, type TlsValidity } from './tls-validity.js';

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
   * Graceful shutdown, in order: readiness turns false at once ({@link HttpsApp.isDraining}) and
   * every answer not yet started says `Connection: close` and ends its connection (so pooled
   * keep-alive clients reconnect elsewhere); the app keeps serving for `timeouts.drainDelayMs` (so
   * a load balancer can see it and route away), then stops accepting and closes idle keep-alive
   * connections, lets in-flight requests (streams included) finish for up to
   * `timeouts.shutdownGracePeriodMs`, destroys what is left, and closes the Nest app.
   */
  close(): Promise<void>;
  /** True from the moment `close()` is called: a readiness probe answers 503 from then on. */
  isDraining(): boolean;
}

// The app of each TLS server, for readiness checks that only hold the server (`HttpAdapterHost`).
const appsByServer = new WeakMap<object, ShieldHttpsApp<INestApplication>>();

/**
 * True when the HTTPS app serving `httpServer` is shutting down (its `close()` was called, for
 * example on SIGTERM); false otherwise, and for a server this package did not create. For a
 * readiness route: `isHttpsDraining(adapterHost.httpAdapter.getHttpServer())`.
 */
export function isHttpsDraining(httpServer: unknown): boolean {
  if (typeof httpServer !== 'object' || httpServer === null) return false;
  return appsByServer.get(httpServer)?.isDraining() ?? false;
}

/** The dates of the TLS material of the HTTPS app serving `httpServer` (for the health indicators). */
export function httpsTlsValidityOf(httpServer: unknown): TlsValidity | undefined {
  if (typeof httpServer !== 'object' || httpServer === null) return undefined;
  return appsByServer.get(httpServer)?.tlsValidity();
}

const logger = new Logger('ShieldHttps');

const ADAPTER_REFUSED =
  '"adapter" must be "express", "fastify" or an ExpressAdapter instance; pass "fastify" to let the bootstrap build the Fastify adapter with the TLS policy';

function infoOf(bundle: LoadedTlsBundle): HttpsCertificateInfo {
  return Object.freeze({
    fingerprint256: bundle.fingerprint256,
    notBefore: bundle.notBefore,
    notAfter: bundle.notAfter,
    files: bundle.files,
  });
}

/**
 * The files of the TLS bundle: the server certificate and key, and the client CA and CRL when the CA
 * is a file. They travel together: one bundle, checked and swapped as one. A CA given as PEM text
 * is loaded once, apart ({@link staticCaOf}).
 */
function tlsFilesOf(options: ResolvedHttpsOptions): TlsFiles | undefined {
  const { cert, key } = options.tls;
  // Material from `tls.source` is no file: nothing to read or watch.
  if (cert === undefined || key === undefined) return undefined;
  const files: TlsFiles = { cert, key };
  const mtls = options.mtls;
  if (mtls !== undefined && 'file' in mtls.ca) {
    files.ca = mtls.ca.file;
    if (mtls.crl !== undefined) files.crl = mtls.crl;
  }
  return files;
}

/**
 * The bundle to serve now: the files read and checked, or the current material of `tls.source`
 * checked the same way (with its `ca` as the client CAs when `mtls.ca` is `{ tlsSource: true }`).
 */
function loadServerBundle(options: ResolvedHttpsOptions, files: TlsFiles | undefined): LoadedTlsBundle {
  const source = options.tls.source;
  if (source !== undefined) {
    return loadTlsSource(source, options.mtls !== undefined && 'tlsSource' in options.mtls.ca);
  }
  if (files === undefined) throw new TypeError('"tls.cert" and "tls.key" are required without "tls.source"');
  return loadTlsBundle(files, { usage: 'server' });
}

/** The client CA given as PEM text, checked by core (`ERR_CERT_INVALID` naming `mtls.ca.pem`). */
function staticCaOf(options: ResolvedHttpsOptions): Buffer | undefined {
  const ca = options.mtls?.ca;
  return ca !== undefined && 'pem' in ca ? loadCaSource('mtls.ca', ca) : undefined;
}

/** The `https.createServer` options: TLS policy, mTLS and the HTTP limits that can only be set there. */
function serverOptions(
  bundle: LoadedTlsBundle,
  options: ResolvedHttpsOptions,
  staticCa: Buffer | undefined,
): HttpsServerOptions {
  return {
    ...secureContextOptions(bundle, options, staticCa),
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

/** The adapter, checked once: Fastify is built here with the TLS policy; Express is built or taken. */
type CheckedAdapter =
  { readonly kind: 'fastify' } | { readonly kind: 'express'; readonly adapter: AbstractHttpAdapter };

/**
 * Check the adapter choice, once, before any file is read. Another adapter instance (a
 * `FastifyAdapter` you built, or a third-party one) builds its server from its own options, out of
 * reach of the TLS policy, so it is refused.
 */
async function checkAdapter(choice: unknown): Promise<CheckedAdapter> {
  if (choice === 'fastify') return { kind: 'fastify' };
  if (choice === 'express' || choice instanceof AbstractHttpAdapter) {
    const { ExpressAdapter } = await import('@nestjs/platform-express');
    if (choice === 'express') return { kind: 'express', adapter: new ExpressAdapter() };
    if (choice instanceof ExpressAdapter) return { kind: 'express', adapter: choice };
  }
  throw new TypeError(ADAPTER_REFUSED);
}

async function createNestApp<T extends INestApplication>(
  rootModule: IEntryNestModule,
  options: ResolvedHttpsOptions,
  httpsOptions: HttpsServerOptions,
  adapter: CheckedAdapter,
): Promise<T> {
  const nest = { ...options.nest } as NestApplicationOptions;
  if (adapter.kind === 'fastify') {
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
  const expressAdapter = adapter.adapter;
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
 * One HTTPS application: the Nest app, its server's hooks ({@link HttpsServerHooks}), the TLS
 * bundle in use and its rotation, the listeners and the shutdown. Built by {@link createHttpsApp}
 * once every check has passed.
 */
class ShieldHttpsApp<T extends INestApplication> implements HttpsApp<T> {
  private current: LoadedTlsBundle;
  private readonly watcher: TlsBundleWatcher | undefined;
  private readonly stopSource: (() => void) | undefined;
  private readonly stopSighup: (() => void) | undefined;
  private listening = false;
  private redirectServer: HttpServer | undefined;
  private closing: Promise<void> | undefined;
  private draining = false;

  /**
   * Starts the certificate watcher and the SIGHUP reload. Throws when rotation was asked for and
   * cannot work (an unwatchable folder): the caller then closes the app.
   */
  constructor(
    readonly app: T,
    readonly options: ResolvedHttpsOptions,
    private readonly server: TlsServer & HttpServer,
    private readonly hooks: HttpsServerHooks,
    private readonly adapter: CheckedAdapter['kind'],
    private readonly files: TlsFiles | undefined,
    private readonly staticCa: Buffer | undefined,
    initial: LoadedTlsBundle,
  ) {
    this.current = initial;
    observeServerCertificates(server, () => this.current, staticCa);
    // A source announces its changes: each one is checked and applied as a reload is.
    this.stopSource = options.tls.source?.subscribe(() => void this.reload());
    if (options.reload.watch && files !== undefined) {
      const watcher = new TlsBundleWatcher(files, {
        usage: 'server',
        debounceMs: options.reload.debounceMs,
        // A bundle apply() refuses is reported by the watcher, which keeps the previous one.
        onReload: (next) => this.apply(next),
        onError: (err) => this.report(err),
      });
      watcher.start(initial);
      this.watcher = watcher;
    }
    this.stopSighup = options.reload.sighup ? onSighupReload(() => void this.reload()) : undefined;
  }

  certificate(): HttpsCertificateInfo {
    return infoOf(this.current);
  }

  /** Swap a new, checked bundle in. Throws when the server refuses it (the watcher reports that). */
  private apply(next: LoadedTlsBundle): void {
    // setSecureContext rebuilds the context from these options alone: the whole policy is passed.
    this.server.setSecureContext(secureContextOptions(next, this.options, this.staticCa));
    this.current = next;
    logger.log(
      `TLS certificate reloaded from ${next.files.cert}: sha256 ${next.fingerprint256}, valid until ${next.notAfter.toISOString()}`,
    );
    try {
      this.options.reload.onReload?.(infoOf(next));
    } catch (err) {
      // The new certificate is in use; a failing notification must not read as a refused reload.
      logger.warn(`reload.onReload failed: ${err instanceof Error ? err.name : typeof err}`);
    }
  }

  private report(err: ShieldError): void {
    // Loader messages name the file and the problem, never key material.
    logger.error(`TLS certificate reload refused, the previous certificate stays in use: ${err.message}`);
    this.options.reload.onReloadError?.(err);
  }

  reload(): boolean {
    if (this.watcher !== undefined) return this.watcher.reload() !== undefined;
    try {
      const next = loadServerBundle(this.options, this.files);
      if (!sameTlsBundle(this.current, next)) this.apply(next);
      return true;
    } catch (err) {
      this.report(
        isShieldError(err)
          ? err
          : new ShieldError('ERR_CERT_INVALID', {
              message: 'the certificate bundle could not be applied',
              cause: err,
            }),
      );
      return false;
    }
  }

  async listen(port = 8443, host?: string): Promise<HttpsListenResult> {
    if (this.closing !== undefined) throw new Error('the HTTPS app is closed');
    if (this.listening) throw new Error('the HTTPS app is already listening');
    this.listening = true;
    try {
      if (this.adapter === 'fastify') await this.app.listen(port, await fastifyHost(host));
      else if (host === undefined) await this.app.listen(port);
      else await this.app.listen(port, host);
    } catch (err) {
      this.listening = false;
      throw err;
    }
    const address = this.server.address() as AddressInfo;
    const shown = host === undefined || host === '0.0.0.0' || host === '::' ? 'localhost' : host;
    const url = `https://${shown.includes(':') ? `[${shown}]` : shown}:${address.port}`;
    const redirectOptions = this.options.redirect;
    if (redirectOptions === undefined) return { url, port: address.port };
    const redirect = createRedirectServer(this.options, address.port);
    this.redirectServer = redirect;
    const bindHost = redirectOptions.host ?? host;
    await new Promise<void>((resolve, reject) => {
      redirect.once('error', reject);
      redirect.listen(redirectOptions.port, bindHost, () => {
        redirect.removeListener('error', reject);
        resolve();
      });
    });
    return { url, port: address.port, redirectPort: (redirect.address() as AddressInfo).port };
  }

  close(): Promise<void> {
    // Flipped before anything else, synchronously: a probe arriving now already reads 503.
    this.draining = true;
    this.closing ??= this.shutdown();
    return this.closing;
  }

  isDraining(): boolean {
    return this.draining;
  }

  /** The dates of the bundle in use and of the client CAs (parsed once per bundle). */
  tlsValidity(): TlsValidity {
    return tlsValidityOf(this.current, this.staticCa);
  }

  private async shutdown(): Promise<void> {
    // Runs synchronously within close(): from here on every answer not yet started says
    // `Connection: close` and ends its connection, so a client with a pooled keep-alive connection
    // (one a load balancer's readiness cannot move) opens a new one, to a replica that is not
    // draining.
    this.hooks.startClosing();
    const delay = this.options.timeouts.drainDelayMs;
    if (this.listening && delay > 0) {
      // Still serving, new connections included: the load balancer needs this long to see
      // readiness fail and stop routing here.
      logger.log(`draining: readiness is false, serving ${delay} ms more before closing the listener`);
      await new Promise<void>((resolve) => setTimeout(resolve, delay));
    }
    this.stopSighup?.();
    this.watcher?.close();
    this.stopSource?.();
    if (this.redirectServer !== undefined) {
      this.redirectServer.close();
      this.redirectServer.closeAllConnections();
    }
    if (this.listening) {
      // Stops accepting and closes idle keep-alive connections. Busy ones end after their
      // answer: it says `Connection: close`, or its head went out before the drain began and the
      // request gate closes the connection once that answer ends.
      this.server.close();
      this.server.closeIdleConnections();
      this.hooks.listenerClosed();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.options.timeouts.shutdownGracePeriodMs);
      });
      await Promise.race([this.hooks.drained(), grace]);
      clearTimeout(timer);
      // A stream still open ends with an event its client can read, not with a reset.
      await this.hooks.endEventStreams();
      this.server.closeAllConnections();
      this.hooks.destroyAll();
    }
    await this.app.close();
  }
}

/**
 * Create a Nest application that serves HTTPS only, for Express (default) or Fastify. Before Nest
 * starts, the options and the adapter are validated (`TypeError` naming the field) and the
 * certificate, key, CA and CRL are read and checked (`ShieldError` `ERR_CERT_*` naming the file and
 * the problem): a bad configuration never gets as far as a listening socket. The server then
 * applies the TLS policy (TLS 1.2+, ECDHE+AEAD suites, no renegotiation), answers plain HTTP with a
 * `400`, adds the security headers, enforces size and time limits, and reloads certificates without
 * a restart. Its hooks run in the order {@link HttpsServerHooks} states; other packages add theirs
 * through the one seam, `requestHooksOf(server)` (`@inference-shield/https/internal`). Coded
 * refusals thrown inside Nest are answered by `ShieldExceptionFilter`, which `IdentityModule` and
 * `UpstreamModule` register.
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
  const checked = await checkAdapter(adapter);
  const files = tlsFilesOf(options);
  const staticCa = staticCaOf(options);
  const initial = loadServerBundle(options, files);

  const app = await createNestApp<T>(rootModule, options, serverOptions(initial, options, staticCa), checked);
  try {
    const server: unknown = app.getHttpServer();
    if (!(server instanceof TlsServer)) {
      throw new Error('the Nest HTTP adapter did not create a TLS server; refusing to serve plaintext');
    }
    const httpServer = server as TlsServer & HttpServer;
    const hooks = HttpsServerHooks.install(httpServer, options);
    // Which groups are in force depends on the runtime's OpenSSL (post-quantum on Node 24+ only):
    // said once, so an operator can tell from the log whether key exchange is quantum-safe.
    logger.log(`TLS policy: ${options.tls.minVersion} and up, ${describeKeyExchangeGroups()}`);
    const https = new ShieldHttpsApp<T>(
      app,
      options,
      httpServer,
      hooks,
      checked.kind,
      files,
      staticCa,
      initial,
    );
    appsByServer.set(httpServer, https);
    return https;
  } catch (err) {
    await app.close();
    throw err;
  }
}
