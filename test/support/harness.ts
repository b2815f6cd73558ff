/**
 * The one end-to-end harness: start an app the way a user's `main.ts` does (`createHttpsApp`, so
 * the connection gate, the request gate, the security headers and the limits all run), call it over
 * real TLS, and capture what it logs.
 *
 * - {@link startApp}: the real bootstrap on 127.0.0.1:0 with a dev-PKI server certificate,
 *   Express or Fastify; every bootstrap option passes through.
 * - {@link startPlainNestApp}: the explicit opt-out, a bare `NestFactory.create` over TLS, for a
 *   test whose subject is a Nest app without our bootstrap. Each caller says why.
 * - {@link call}: one request on a fresh TLS connection (method, headers, body, client
 *   certificate), the raw answer and its parsed JSON.
 * - {@link CaptureLogger}: every line Nest's `Logger` is given.
 */
import { mkdtempSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request, type Agent, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { INestApplication, LoggerService, NestApplicationOptions } from '@nestjs/common';
import { NestFactory, type IEntryNestModule } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { TestingModule } from '@nestjs/testing';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import {
  createHttpsApp,
  type HttpsAdapterChoice,
  type HttpsApp,
  type HttpsBootstrapOptions,
  type HttpsMtlsOptions,
  type HttpsNestOptions,
  type HttpsTlsOptions,
} from '@inference-shield/https';

/** A fresh test PKI (`createTestPki`) in its own temp folder. */
export async function testPki(prefix = 'shield-test'): Promise<TestPki> {
  return createTestPki(mkdtempSync(join(tmpdir(), `${prefix}-`)));
}

/** Options of {@link startApp}: the bootstrap's own, with test defaults and two shorthands. */
export interface StartOptions extends Omit<HttpsBootstrapOptions, 'tls' | 'mtls' | 'nest'> {
  /** The PKI whose server certificate is served; default a fresh {@link testPki}. */
  readonly pki?: TestPki;
  /** Overrides of the server identity; default the PKI's `server` certificate and key files. */
  readonly tls?: Partial<HttpsTlsOptions>;
  /** `'required'` or `'optional'` trusts the PKI's CA (as `{ file }`); or the bootstrap's own options. */
  readonly mtls?: HttpsMtlsOptions['mode'] | HttpsMtlsOptions;
  /** Nest's options passed through (`bodyParser`, `rawBody`, …); the logger defaults to `false`. */
  readonly nest?: HttpsNestOptions;
  /** Shorthand for `nest.logger`. */
  readonly logger?: LoggerService | false;
  /** `'express'` (default), `'fastify'` or an adapter instance. */
  readonly adapter?: HttpsAdapterChoice;
  /** Address to bind; default 127.0.0.1. */
  readonly host?: string;
}

/** Options of one {@link call}, without the CA (a started app knows its own). */
export type AppCallOptions = Omit<CallOptions, 'ca'>;

/** A started app: its PKI, where it listens, a bound {@link call} and `close()`. */
export interface PlainTestApp<T extends INestApplication = INestApplication> {
  readonly pki: TestPki;
  readonly app: T;
  readonly port: number;
  /** `https://localhost:<port>` (the certificate names localhost). */
  readonly url: string;
  /** PEM of the CA the server certificate chains to. */
  readonly ca: string;
  /** {@link call} to this app, verified against its CA. */
  call(path: string, opts?: AppCallOptions): Promise<CallResult>;
  close(): Promise<void>;
}

/** An app started by {@link startApp}, with the bootstrap's handle. */
export interface TestApp<T extends INestApplication = INestApplication> extends PlainTestApp<T> {
  readonly https: HttpsApp<T>;
}

/**
 * Starts `module` with the real bootstrap (`createHttpsApp`) on 127.0.0.1:0. File watching and
 * SIGHUP are off and Nest's logging is off unless `options` say otherwise.
 */
export async function startApp<T extends INestApplication = INestApplication>(
  module: IEntryNestModule,
  options: StartOptions = {},
): Promise<TestApp<T>> {
  const { pki: given, tls, mtls, nest, logger, adapter, host, ...rest } = options;
  const pki = given ?? (await testPki());
  const bootstrap: HttpsBootstrapOptions = {
    ...rest,
    tls: { cert: pki.server.cert, key: pki.server.key, ...tls },
    reload: { watch: false, sighup: false, ...rest.reload },
    nest: { logger: logger ?? false, ...nest },
    ...(mtls === undefined
      ? {}
      : { mtls: typeof mtls === 'string' ? { mode: mtls, ca: { file: pki.ca.cert } } : mtls }),
  };
  const https = await createHttpsApp<T>(module, bootstrap, adapter);
  const { port } = await https.listen(0, host ?? '127.0.0.1');
  return { ...started(pki, https.app, port, () => https.close()), https };
}

/** Options of {@link startPlainNestApp}. */
export interface PlainStartOptions {
  readonly pki?: TestPki;
  readonly adapter?: 'express' | 'fastify';
  readonly logger?: LoggerService | false;
  /** Node's TLS server options; default the PKI's server certificate, TLS 1.3. */
  readonly httpsOptions?: ServerOptions;
  /** Why this test must not run behind the bootstrap (kept at the call site, read by reviewers). */
  readonly why: string;
}

/**
 * The opt-out: `NestFactory.create` (or a compiled `TestingModule`'s `createNestApplication`) over
 * TLS without our bootstrap: no connection or request gate, no security headers, Nest's own
 * parsers. Only for a test whose subject is a plain Nest app, or that must replace a provider
 * with `Test.createTestingModule`, which `createHttpsApp` cannot take.
 */
export async function startPlainNestApp(
  module: IEntryNestModule | TestingModule,
  options: PlainStartOptions,
): Promise<PlainTestApp> {
  const pki = options.pki ?? (await testPki());
  const httpsOptions: ServerOptions = options.httpsOptions ?? {
    key: pki.server.keyPem,
    cert: pki.server.certPem,
    minVersion: 'TLSv1.3',
  };
  const logger = options.logger ?? false;
  const adapter = options.adapter === 'fastify' ? new FastifyAdapter({ https: httpsOptions }) : undefined;
  // Nest's HttpsOptions type predates minVersion; the options go to https.createServer as they are.
  const nest: NestApplicationOptions = adapter
    ? { logger }
    : { logger, httpsOptions: httpsOptions as NestApplicationOptions['httpsOptions'] };
  let app: INestApplication;
  if (module instanceof TestingModule)
    app = adapter
      ? module.createNestApplication<NestFastifyApplication>(adapter, nest)
      : module.createNestApplication(nest);
  else
    app = adapter
      ? await NestFactory.create<NestFastifyApplication>(module, adapter, nest)
      : await NestFactory.create(module, nest);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return started(pki, app, port, () => app.close());
}

function started<T extends INestApplication>(
  pki: TestPki,
  app: T,
  port: number,
  close: () => Promise<void>,
): PlainTestApp<T> {
  const ca = pki.ca.certPem;
  return {
    pki,
    app,
    port,
    url: `https://localhost:${port}`,
    ca,
    call: (path, opts = {}) => call(port, { ...opts, ca, path }),
    close,
  };
}

/** A client certificate presented in the TLS handshake. */
export interface ClientCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CallOptions {
  /** PEM of the CA the server certificate must chain to. */
  readonly ca: string;
  /** Default `/hello`. */
  readonly path?: string;
  /** Default GET, or POST when a body is given. */
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string | number | readonly string[]>>;
  /** A raw body, sent as it is (with a Content-Length unless the headers set a transfer encoding). */
  readonly body?: string | Buffer;
  /** A JSON body (`content-type: application/json`). */
  readonly json?: unknown;
  /** A form body (`application/x-www-form-urlencoded`); an array value repeats the field. */
  readonly form?: Readonly<Record<string, string | readonly string[]>>;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** A raw `Authorization` value (wins over `token`). */
  readonly authorization?: string;
  readonly client?: ClientCertificate;
  /** Default `localhost`. */
  readonly servername?: string;
  /** Default `false`: a fresh connection, so each call has its own handshake and certificate. */
  readonly agent?: Agent | false;
  /** Only turns a hang into a failure; default 15 s. */
  readonly timeoutMs?: number;
}

export interface CallResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as UTF-8 text. */
  readonly text: string;
  /** The body parsed as a JSON object, `{}` when it is not one. */
  readonly body: Record<string, unknown>;
  /** SHA-256 of the server certificate, lowercase hex without colons. */
  readonly serverFingerprint: string;
}

const CALL_OPTIONS = new Set([
  'ca',
  'path',
  'method',
  'headers',
  'body',
  'json',
  'form',
  'token',
  'authorization',
  'client',
  'servername',
  'agent',
  'timeoutMs',
]);

/** One HTTPS request to `127.0.0.1:port` (SNI `localhost`), the server verified against `ca`. */
export function call(port: number, opts: CallOptions): Promise<CallResult> {
  // A misspelt option (say `cert` for `client`) would otherwise be dropped silently, and a test
  // that expects a refusal would pass without presenting what it meant to.
  for (const key of Object.keys(opts))
    if (!CALL_OPTIONS.has(key)) throw new TypeError(`call(): unknown option "${key}"`);
  const headers: Record<string, string | number | readonly string[]> = {};
  let payload: string | Buffer | undefined = opts.body;
  if (opts.json !== undefined) {
    payload = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  } else if (opts.form !== undefined) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.form))
      for (const one of typeof v === 'string' ? [v] : v) params.append(k, one);
    payload = params.toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  Object.assign(headers, opts.headers);
  const named = (name: string): boolean => Object.keys(headers).some((k) => k.toLowerCase() === name);
  if (payload !== undefined && !named('content-length') && !named('transfer-encoding'))
    headers['content-length'] = Buffer.byteLength(payload);
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.authorization !== undefined) headers['authorization'] = opts.authorization;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/hello',
        method: opts.method ?? (payload === undefined ? 'GET' : 'POST'),
        servername: opts.servername ?? 'localhost',
        ca: opts.ca,
        ...(opts.client ? { cert: opts.client.certPem, key: opts.client.keyPem } : {}),
        headers: headers as Record<string, string | number | string[]>,
        agent: opts.agent ?? false,
      },
      (res) => {
        // Read now: a keep-alive agent takes the socket back before 'end'.
        const peer = (res.socket as TLSSocket).getPeerX509Certificate?.();
        const serverFingerprint = (peer?.fingerprint256 ?? '').replaceAll(':', '').toLowerCase();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown> = {};
          try {
            const parsed: unknown = JSON.parse(text);
            if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
          } catch {
            // Not JSON: `text` keeps what came.
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body, serverFingerprint });
        });
      },
    );
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`no answer from ${opts.path ?? '/hello'} within ${timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Every line Nest's `Logger` is given, at every level, as `<level> <message> <context…>`: objects
 * as JSON, errors with their stack (a "nothing sensitive in logs" check must see those too).
 */
export class CaptureLogger implements LoggerService {
  readonly lines: string[] = [];

  private push(level: string, args: unknown[]): void {
    this.lines.push(`${level} ${args.map((a) => (typeof a === 'string' ? a : render(a))).join(' ')}`);
  }
  log(...args: unknown[]): void {
    this.push('log', args);
  }
  error(...args: unknown[]): void {
    this.push('error', args);
  }
  warn(...args: unknown[]): void {
    this.push('warn', args);
  }
  debug(...args: unknown[]): void {
    this.push('debug', args);
  }
  verbose(...args: unknown[]): void {
    this.push('verbose', args);
  }
  fatal(...args: unknown[]): void {
    this.push('fatal', args);
  }
}

function render(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}\n${value.stack ?? ''}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
