import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import {
  isShieldError,
  loadCaSource,
  loadTlsBundle,
  ShieldError,
  TlsBundleWatcher,
  type LoadedTlsBundle,
  type ShieldErrorCode,
} from '@inference-shield/core/internal';
import { toUpstreamError } from './upstream-error.mapping.js';
import { leanFetch, leanFetchRequest } from './lean-fetch.js';
import { UpstreamCounters, type UpstreamStats } from './upstream-stats.js';
import { UpstreamTelemetry, type UpstreamCertificateValidity } from './upstream.telemetry.js';
import { resolveUpstreamTarget, upstreamRequestTarget } from './upstream-target.js';
import { buildUpstreamDispatcher, type UpstreamPool, type UpstreamTlsMaterial } from './upstream-tls.js';
import type { ResolvedUpstreamOptions } from './upstream-options.interface.js';
import { loadUpstreamTlsSource, type UpstreamTlsSource } from './upstream-tls-source.js';
import { UpstreamCredential } from './credentials/upstream-credential.js';
import type { CredentialStats } from './credentials/refreshing-token.js';

/** HTTP methods `request()` sends. */
export type UpstreamMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** Options of {@link UpstreamClient.request}. */
export interface UpstreamRequestOptions {
  /** Path (and query) relative to the upstream's base URL: `chat/completions` or `/chat/completions`. */
  readonly path: string;
  readonly method?: UpstreamMethod;
  /** Request headers; the configured credential header, when any, replaces a caller's. */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  readonly body?: string | Uint8Array | Readable | null;
  /** Aborts the request, including a response being streamed. */
  readonly signal?: AbortSignal;
}

/** The response of {@link UpstreamClient.request}: headers, and the body as a Node stream. */
export interface UpstreamResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /**
   * The body, streamed as it arrives (undici's `BodyReadable`, with `text()`, `json()`, `dump()`).
   * A failure while it streams (idle timeout, upstream gone) is an undici error: pass it to
   * `toUpstreamError` for its code.
   */
  readonly body: Readable & {
    text(): Promise<string>;
    json(): Promise<unknown>;
    dump(opts?: { limit: number }): Promise<void>;
  };
}

/** The WHATWG `fetch` signature, as the OpenAI SDK (and any fetch-based client) takes it. */
export type UpstreamFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Hooks of {@link UpstreamClient.create}. */
export interface UpstreamClientHooks {
  /** A replacement client certificate was refused; the previous one stays in use. */
  onCertificateError?: (err: ShieldError) => void;
  /** A new client certificate is in use for new connections. */
  onCertificateReload?: (bundle: LoadedTlsBundle) => void;
  /** A token refresh failed; the current token stays in use until it expires (log the code only). */
  onCredentialRefreshError?: (err: ShieldError) => void;
}

// Redirect statuses (RFC 9110 §15.4): never followed, never handed over as a success. 304 is not one.
const REDIRECTS: ReadonlySet<number> = new Set([300, 301, 302, 303, 307, 308]);
/** How long `close()` lets requests in flight finish before cutting them. */
const SHUTDOWN_GRACE_MS = 5_000;
/** Drained bytes of a refused redirect's body before the connection is dropped instead. */
const DRAIN_LIMIT = 64 * 1024;

/**
 * The outbound client of one upstream: mTLS with verification that cannot be turned off, an
 * origin check before any connection, typed errors, and one connection pool created at start-up.
 *
 * @example
 * const openai = new OpenAI({ baseURL: llm.baseUrl, apiKey: 'set-by-the-upstream', fetch: llm.fetch });
 */
export class UpstreamClient {
  /** The upstream's name, as configured. */
  readonly name: string;
  /** The base URL, ending in `/`. */
  readonly baseUrl: string;
  /** The upstream origin, e.g. `https://mtls.api.openai.com`. */
  readonly origin: string;

  private readonly counters: UpstreamCounters;
  private pool: UpstreamPool;
  private readonly retiring = new Set<UpstreamPool>();
  private closed = false;
  /** Unsubscribes from `clientCertificateSource`. */
  private stopSource: (() => void) | undefined;
  /** The keyless credential (a token from a token endpoint), when configured. */
  private tokenCredential: UpstreamCredential | undefined;
  /** The TLS material in use (its certificates' expiry is observed) and the OpenTelemetry instruments. */
  private material: UpstreamTlsMaterial;
  private readonly telemetry: UpstreamTelemetry;

  private constructor(
    private readonly options: ResolvedUpstreamOptions,
    material: UpstreamTlsMaterial,
    private readonly proxyCa: Buffer | undefined,
    private readonly watcher: TlsBundleWatcher | undefined,
  ) {
    this.name = options.name;
    this.baseUrl = options.baseUrl;
    this.origin = options.origin;
    this.counters = new UpstreamCounters(options.name);
    this.pool = buildUpstreamDispatcher(options, material, this.counters, proxyCa);
    this.material = material;
    const cc = options.clientCertificate;
    const ca = options.ca;
    this.telemetry = new UpstreamTelemetry(options.name, options.origin, {
      stats: () => this.counters.snapshot(),
      pool: () => this.pool.figures(),
      material: () => this.material,
      files: {
        ...(cc !== undefined ? { cert: cc.cert } : {}),
        ...(ca !== undefined && 'file' in ca ? { ca: ca.file } : {}),
      },
    });
  }

  private get dispatcher(): Dispatcher {
    return this.pool.dispatcher;
  }

  /**
   * Load the TLS material (a bad file throws a `ShieldError` `ERR_CERT_*` naming it), create the
   * connection pool, and start watching the client certificate for rotation.
   */
  static async create(
    options: ResolvedUpstreamOptions,
    hooks: UpstreamClientHooks = {},
  ): Promise<UpstreamClient> {
    const proxyCa =
      options.egressProxy?.ca !== undefined
        ? loadCaSource(`upstreams.${options.name}.egressProxy.ca`, options.egressProxy.ca)
        : undefined;
    const source = options.clientCertificateSource;
    if (source !== undefined) return UpstreamClient.fromSource(options, hooks, source);
    const ca = options.ca;
    const cc = options.clientCertificate;
    if (cc === undefined) {
      const material = ca !== undefined ? { ca: loadCaSource(`upstreams.${options.name}.ca`, ca) } : {};
      // The credential (its key) is loaded first: a bad key file stops here, before any pool exists.
      const credential = await loadCredential(options, material, hooks, proxyCa);
      const client = new UpstreamClient(options, material, proxyCa, undefined);
      client.tokenCredential = credential;
      return client;
    }
    // A CA file is watched with the client certificate; PEM text given in the options is loaded
    // once and joins every bundle the watcher delivers.
    const files =
      ca !== undefined && 'file' in ca
        ? { cert: cc.cert, key: cc.key, ca: ca.file }
        : { cert: cc.cert, key: cc.key };
    const staticCa =
      ca !== undefined && 'pem' in ca ? loadCaSource(`upstreams.${options.name}.ca`, ca) : undefined;
    // The watcher is created before the client it feeds: reloads reach the client through this box.
    const box: { client?: UpstreamClient } = {};
    const watcher = cc.watch
      ? new TlsBundleWatcher(files, {
          usage: 'client',
          onReload: (bundle) => {
            box.client?.rotate(materialOf(bundle, staticCa));
            hooks.onCertificateReload?.(bundle);
          },
          onError: (err) => hooks.onCertificateError?.(err),
        })
      : undefined;
    const bundle = watcher !== undefined ? watcher.start() : loadTlsBundle(files, { usage: 'client' });
    const material = materialOf(bundle, staticCa);
    let credential: UpstreamCredential | undefined;
    try {
      credential = await loadCredential(options, material, hooks, proxyCa);
    } catch (err) {
      watcher?.close();
      throw err;
    }
    box.client = new UpstreamClient(options, material, proxyCa, watcher);
    box.client.tokenCredential = credential;
    return box.client;
  }

  /**
   * WHATWG `fetch` bound to this upstream (pass it to the OpenAI SDK). The URL must lie under the
   * base URL; redirects are refused (`ERR_UPSTREAM_REDIRECT`); failures reject with a `ShieldError`
   * (the SDK wraps it as `APIConnectionError` with this error as `cause`). A caller abort rejects
   * with the signal's reason, as fetch does, and cancels the upstream request, body included.
   *
   * Built on the pool's dispatcher, not on undici's `fetch` (five times the CPU of `request()`):
   * it returns a standard `Response` whose body streams from the socket (see `lean-fetch.ts` for
   * what it leaves out). A failure while the body streams errors it with a `ShieldError`.
   */
  readonly fetch: UpstreamFetch = async (input, init) => {
    const req = await leanFetchRequest(input, init);
    const url = this.check(() => resolveUpstreamTarget(this.options, req.url));
    const signal = req.signal;
    const credential = this.options.credential;
    // The configured credential replaces whatever the caller sent under that name.
    if (credential !== undefined) req.headers[credential.header] = credential.value;
    else if (this.tokenCredential !== undefined) req.headers.authorization = await this.bearer(signal);
    this.counters.requests++;
    const span = this.telemetry.start(req.method, req.headers);
    let res: Response;
    try {
      res = await leanFetch(
        this.dispatcher,
        { origin: this.options.origin, path: `${url.pathname}${url.search}`, url: url.href },
        req,
        this.bodyError,
      );
    } catch (err) {
      if (signal?.aborted === true) {
        this.counters.error('ERR_UPSTREAM_ABORTED');
        UpstreamTelemetry.failed(span, 'ERR_UPSTREAM_ABORTED');
        throw err;
      }
      const failure = this.fail(err);
      UpstreamTelemetry.failed(span, failure.code);
      throw failure;
    }
    this.counters.responses++;
    UpstreamTelemetry.answered(span, res.status);
    if (REDIRECTS.has(res.status)) {
      await res.body?.cancel().catch(() => undefined);
      throw this.fail(new Error(`upstream answered ${res.status}`), 'ERR_UPSTREAM_REDIRECT');
    }
    return res;
  };

  /** Maps a failure while a `fetch` body streams (idle timeout, upstream gone) to a typed error. */
  private readonly bodyError = (err: unknown): ShieldError => this.fail(err);

  /**
   * The lower-level request: undici's `request` through this upstream's pool, body as a Node
   * stream. Same checks and errors as {@link fetch}; a caller abort rejects with `ERR_UPSTREAM_ABORTED`.
   */
  async request(options: UpstreamRequestOptions): Promise<UpstreamResponse> {
    return this.send(options, true);
  }

  /**
   * One `HEAD` of the base URL with no credential (no token is asked for, none is sent), through
   * the pool real calls use: the status of any answer (the TLS handshake passed, our client
   * certificate was accepted), or the typed error of the failure
   * (`ERR_UPSTREAM_CLIENT_CERT_REFUSED`, `ERR_UPSTREAM_CONNECT`, …). For health checks.
   */
  async probe(signal?: AbortSignal): Promise<number> {
    // '' is the base URL itself.
    const res = await this.send(
      { method: 'HEAD', path: '', ...(signal !== undefined ? { signal } : {}) },
      false,
    );
    await res.body.dump({ limit: DRAIN_LIMIT }).catch(() => undefined);
    return res.statusCode;
  }

  /**
   * The client certificate (its leaf) and each CA certificate in use, with their ends, as the
   * `shield.certificate.expiry` metric observes them (a rotation is seen at once). Never key material.
   */
  certificates(): readonly UpstreamCertificateValidity[] {
    return this.telemetry.certificates();
  }

  private async send(options: UpstreamRequestOptions, credentialed: boolean): Promise<UpstreamResponse> {
    const path = this.check(() => upstreamRequestTarget(this.options, options.path));
    const headers: Record<string, string | string[]> = {};
    if (options.headers !== undefined) {
      for (const [k, v] of Object.entries(options.headers))
        headers[k.toLowerCase()] = typeof v === 'string' ? v : [...v];
    }
    const credential = credentialed ? this.options.credential : undefined;
    if (credential !== undefined) headers[credential.header] = credential.value;
    else if (credentialed && this.tokenCredential !== undefined) {
      try {
        headers.authorization = await this.bearer(options.signal);
      } catch (err) {
        throw options.signal?.aborted === true ? this.fail(err, 'ERR_UPSTREAM_ABORTED') : err;
      }
    }
    this.counters.requests++;
    const method = options.method ?? 'GET';
    const span = this.telemetry.start(method, headers);
    let res: Dispatcher.ResponseData;
    try {
      const req: Dispatcher.RequestOptions = { origin: this.options.origin, path, method, headers };
      if (options.body !== undefined) req.body = options.body;
      if (options.signal !== undefined) req.signal = options.signal;
      res = await this.dispatcher.request(req);
    } catch (err) {
      const failure = this.fail(err, options.signal?.aborted === true ? 'ERR_UPSTREAM_ABORTED' : undefined);
      UpstreamTelemetry.failed(span, failure.code);
      throw failure;
    }
    this.counters.responses++;
    UpstreamTelemetry.answered(span, res.statusCode);
    if (REDIRECTS.has(res.statusCode)) {
      res.body.dump({ limit: DRAIN_LIMIT }).catch(() => undefined);
      throw this.fail(new Error(`upstream answered ${res.statusCode}`), 'ERR_UPSTREAM_REDIRECT');
    }
    return { statusCode: res.statusCode, headers: res.headers, body: res.body };
  }

  /** Counters since start-up: requests, errors by code, handshakes vs reused connections. */
  stats(): UpstreamStats {
    return this.counters.snapshot();
  }

  /**
   * Run `fn` on behalf of the inbound caller whose access token is `callerToken`: the upstream's
   * `tokenExchange` credential with `subjectToken: { callerToken: true }` exchanges that token
   * (with this workload's `actorToken`) for the calls `fn` makes through this client, `fetch` and
   * `request` alike. A `TypeError` for an upstream not configured so.
   *
   * @example
   * const answer = await llm.onBehalfOf(bearerOf(req), () => openai.chat.completions.create(params));
   */
  onBehalfOf<T>(callerToken: string, fn: () => T): T {
    if (this.tokenCredential?.onBehalfOf !== true) {
      throw new TypeError(
        `upstream "${this.name}" does not exchange callers' tokens (credential.tokenExchange.subjectToken: { callerToken: true })`,
      );
    }
    return callerTokens.run({ upstream: this, token: callerToken }, fn);
  }

  /** Counters of the keyless credential (token requests, failures), when one is configured. */
  credentialStats(): Readonly<CredentialStats> | undefined {
    return this.tokenCredential?.stats();
  }

  /** Count a failure seen by a user of {@link request} (e.g. while streaming the body). */
  recordError(err: unknown): ShieldError {
    return this.fail(err);
  }

  /** Load the client certificate from disk now (e.g. on SIGHUP); refused files keep the current one. */
  reloadClientCertificate(): void {
    this.watcher?.reload();
  }

  /**
   * Stop watching, let requests in flight finish (5 s at most, then they are cut), close every
   * connection. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.telemetry.close();
    this.stopSource?.();
    this.watcher?.close();
    await this.tokenCredential?.close();
    const deadline = Date.now() + SHUTDOWN_GRACE_MS;
    await Promise.all([this.pool, ...this.retiring].map((pool) => settle(pool, deadline)));
  }

  /**
   * The client certificate from `clientCertificateSource`: checked now (a bad one stops the start),
   * then on each change the source announces (a bad one is reported and the current one kept).
   * The client is built as one without a certificate (its CA and the rest), then given the source's
   * before any connection exists.
   */
  private static async fromSource(
    options: ResolvedUpstreamOptions,
    hooks: UpstreamClientHooks,
    source: UpstreamTlsSource,
  ): Promise<UpstreamClient> {
    const field = `upstreams.${options.name}.clientCertificateSource`;
    const ca =
      options.ca !== undefined ? loadCaSource(`upstreams.${options.name}.ca`, options.ca) : undefined;
    const material = (): UpstreamTlsMaterial => {
      const { cert, key } = loadUpstreamTlsSource(source, field);
      return ca !== undefined ? { ca, cert, key } : { cert, key };
    };
    const first = material();
    const client = await UpstreamClient.create({ ...options, clientCertificateSource: undefined }, hooks);
    // The source's first certificate is no reload: the pool it replaces has never connected.
    client.rotate(first, false);
    client.stopSource = source.subscribe(() => {
      let next: UpstreamTlsMaterial;
      try {
        next = material();
      } catch (err) {
        hooks.onCertificateError?.(
          isShieldError(err)
            ? err
            : new ShieldError('ERR_CERT_INVALID', { message: `${field}: refused`, cause: err }),
        );
        return;
      }
      client.rotate(next);
    });
    return client;
  }

  /** A new client certificate: new connections use it; the old pool finishes its requests, then closes. */
  private rotate(material: UpstreamTlsMaterial, counted = true): void {
    if (this.closed) return;
    const previous = this.pool;
    this.pool = buildUpstreamDispatcher(this.options, material, this.counters, this.proxyCa);
    this.material = material;
    // The token endpoint sees the same certificate as the upstream.
    this.tokenCredential?.useTls(material);
    if (counted) this.counters.certificateReloads++;
    this.retiring.add(previous);
    // No deadline: a long generation may stream for minutes (each chunk within bodyIdleMs).
    // close() takes over with its own deadline if the app stops first.
    void settle(previous, undefined, () => this.closed).finally(() => this.retiring.delete(previous));
  }

  /**
   * `Bearer <token>` for one request. A caller abort rejects with the signal's reason (as fetch
   * does); no token is a counted `ERR_UPSTREAM_CREDENTIAL_*` (503), and nothing is sent upstream.
   */
  private async bearer(signal: AbortSignal | undefined): Promise<string> {
    const credential = this.tokenCredential as UpstreamCredential;
    const caller = callerTokens.getStore();
    try {
      return await credential.authorization(signal, caller?.upstream === this ? caller.token : undefined);
    } catch (err) {
      if (signal?.aborted === true) {
        this.counters.error('ERR_UPSTREAM_ABORTED');
        throw err;
      }
      throw this.fail(err);
    }
  }

  private check<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.counters.refused++;
      throw this.fail(err);
    }
  }

  private fail(err: unknown, code?: ShieldErrorCode): ShieldError {
    const out = code !== undefined ? new ShieldError(code, { cause: err }) : toUpstreamError(err);
    this.counters.error(out.code);
    return out;
  }
}

/** The caller a call runs on behalf of (`onBehalfOf`), for the upstream it was given to only. */
const callerTokens = new AsyncLocalStorage<{ readonly upstream: UpstreamClient; readonly token: string }>();

/** Load the keyless credential (its key, its token endpoint's pool); no token is asked for yet. */
async function loadCredential(
  options: ResolvedUpstreamOptions,
  material: UpstreamTlsMaterial,
  hooks: UpstreamClientHooks,
  proxyCa: Buffer | undefined,
): Promise<UpstreamCredential | undefined> {
  const c = options.tokenCredential;
  if (c === undefined) return undefined;
  // The token endpoint is reached through the upstream's egress proxy too.
  const egress =
    options.egressProxy !== undefined
      ? { url: options.egressProxy.url, ...(proxyCa !== undefined ? { ca: proxyCa } : {}) }
      : undefined;
  return UpstreamCredential.create(
    options.name,
    c,
    material,
    options.timeouts.connectMs,
    { onRefreshError: (err) => hooks.onCredentialRefreshError?.(err) },
    egress,
  );
}

function materialOf(bundle: LoadedTlsBundle, staticCa: Buffer | undefined): UpstreamTlsMaterial {
  const m: { ca?: Buffer; cert: Buffer; key: Buffer } = { cert: bundle.cert, key: bundle.key };
  const ca = bundle.ca ?? staticCa;
  if (ca !== undefined) m.ca = ca;
  return m;
}

/** Poll interval while waiting for requests in flight to finish (shutdown and rotation only). */
const SETTLE_POLL_MS = 50;

/**
 * Let the requests of a pool finish, then close it; at `deadline`, cut what is left (callers get
 * an error, never a hang). `stop` hands the pool over to another settle (a shutdown).
 */
async function settle(pool: UpstreamPool, deadline: number | undefined, stop?: () => boolean): Promise<void> {
  while (pool.busy() && (deadline === undefined || Date.now() < deadline)) {
    if (stop?.() === true) return;
    await sleep(SETTLE_POLL_MS, undefined, { ref: false });
  }
  if (stop?.() === true) return;
  try {
    if (pool.busy()) await pool.dispatcher.destroy();
    else await pool.dispatcher.close();
  } catch {
    // Already closed or destroyed: nothing left to release.
  }
}
