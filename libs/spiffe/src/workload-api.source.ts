import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { isShieldError, ShieldError } from '@inference-shield/core/internal';
import { createWorkloadApiClient, workloadApiMetadata } from './workload-api.client.js';
import {
  resolveWorkloadApiSourceOptions,
  type ResolvedWorkloadApiSourceOptions,
  type WorkloadApiSourceOptions,
} from './workload-api-source.options.js';
import {
  parseX509SvidResponse,
  type X509SvidMaterial,
  type X509SvidResponseMessage,
} from './x509-svid.parse.js';
import { parseJwtBundles, parseJwtSvid, type JwtBundle, type JwtSvid } from './jwt-svid.parse.js';

/**
 * Readiness of a source. `ready`: streams connected, material valid. `stale`: the agent is gone or
 * restarting; the last valid material is still served until it expires. `expired`: the last valid
 * X.509-SVID has expired (peers refuse it): not ready. `closed`: {@link WorkloadApiSource.close} ran.
 */
export type WorkloadApiState = 'ready' | 'stale' | 'expired' | 'closed';

/** What {@link WorkloadApiSource.status} reports (public facts only). */
export interface WorkloadApiStatus {
  readonly state: WorkloadApiState;
  /** True when every stream the source uses is connected to the agent. */
  readonly connected: boolean;
  /** When valid material last arrived. */
  readonly lastUpdate: Date | undefined;
  /** When the X.509-SVID in use expires (undefined without `x509`). */
  readonly expiresAt: Date | undefined;
  /** The SPIFFE ID of the X.509-SVID in use. */
  readonly spiffeId: string | undefined;
  /** Why the source is not `ready` (a fixed phrase with the agent's status or our refusal; never material). */
  readonly reason: string | undefined;
}

/** Options of {@link WorkloadApiSource.jwtSvid}. */
export interface JwtSvidRequestOptions {
  /** Ask for the JWT-SVID of this SPIFFE ID; default: the agent's first (default) identity. */
  spiffeId?: string;
}

type Stream = 'x509' | 'jwtBundles';

interface StreamState {
  call: ClientReadableStream<unknown> | undefined;
  connected: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  reason: string | undefined;
}

interface CachedJwtSvid {
  readonly svid: JwtSvid;
  /** Past this instant the next call fetches a new token (half its lifetime). */
  readonly refreshAt: number;
}

/** A JWT-SVID a token is never handed out with less than this left: it could expire in transit. */
const MIN_JWT_SVID_REMAINING_MS = 5000;
const MAX_AUDIENCES = 16;
const MAX_AUDIENCE_LENGTH = 1024;

function grpcReason(err: unknown): string {
  const e = err as Partial<ServiceError> | null;
  if (e !== null && typeof e === 'object' && typeof e.code === 'number') {
    const name = (GrpcStatus as unknown as Record<number, string>)[e.code] ?? String(e.code);
    return `gRPC ${name}`;
  }
  return err instanceof Error ? err.name : 'unknown error';
}

function checkAudience(audience: unknown): string[] {
  const list = typeof audience === 'string' ? [audience] : audience;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.length > MAX_AUDIENCES ||
    list.some((a) => typeof a !== 'string' || a.length === 0 || a.length > MAX_AUDIENCE_LENGTH)
  ) {
    throw new TypeError(
      `"audience" must be a non-empty string or an array of 1 to ${MAX_AUDIENCES} non-empty strings`,
    );
  }
  return [...new Set(list as string[])].sort();
}

/**
 * A client of the SPIFFE Workload API: it streams this workload's X.509-SVID and trust bundles
 * (and, when asked, the JWT bundles) from the local agent, reconnecting with backoff when the
 * stream breaks, and fetches JWT-SVIDs per audience. An update that fails validation is refused
 * and logged; the last valid material stays in use until it expires, and {@link status} says so.
 *
 * @example
 * const source = await WorkloadApiSource.connect({ address: 'unix:///run/spire/agent.sock' });
 * const { spiffeId, chainPem, keyPem, bundlesPem } = source.x509();
 * const stop = source.onX509((svid) => console.log(`new SVID until ${svid.expiresAt.toISOString()}`));
 * const { token } = await source.jwtSvid('https://token.example.com');
 */
export class WorkloadApiSource {
  private readonly client: Client;
  private readonly streams = new Map<Stream, StreamState>();
  private x509Material: X509SvidMaterial | undefined;
  private jwtBundleSet: ReadonlyMap<string, JwtBundle> | undefined;
  private lastUpdate: number | undefined;
  private closed = false;
  private readonly x509Listeners = new Set<(svid: X509SvidMaterial) => void>();
  private readonly jwtBundleListeners = new Set<(bundles: ReadonlyMap<string, JwtBundle>) => void>();
  private readonly jwtCache = new Map<string, CachedJwtSvid>();
  private readonly jwtInFlight = new Map<string, Promise<JwtSvid>>();
  private firstMaterial: (() => void) | undefined;

  private constructor(private readonly options: ResolvedWorkloadApiSourceOptions) {
    this.client = createWorkloadApiClient(options.address.target);
  }

  /**
   * Check the options (TypeError naming a bad field), connect to the agent and wait for the first
   * valid material of every stream asked for. An agent that is absent, restarting or has no
   * identity for this workload is retried with backoff until `startupTimeoutMs`; then the source is
   * closed and `connect` rejects with `ShieldError` `ERR_SPIFFE_AGENT_UNAVAILABLE`, whose message
   * names the address and the last problem seen.
   */
  static async connect(options: WorkloadApiSourceOptions = {}): Promise<WorkloadApiSource> {
    const resolved = resolveWorkloadApiSourceOptions(options);
    if (!resolved.x509 && !resolved.jwtBundles) {
      // Fine for JWT-SVIDs only: they are fetched per call, nothing to wait for.
      return new WorkloadApiSource(resolved);
    }
    const source = new WorkloadApiSource(resolved);
    const ready = new Promise<void>((resolve) => {
      source.firstMaterial = resolve;
    });
    if (resolved.x509) source.open('x509');
    if (resolved.jwtBundles) source.open('jwtBundles');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), resolved.startupTimeoutMs);
    });
    const outcome = await Promise.race([ready.then(() => 'ready' as const), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      const reason = source.reason();
      source.close();
      throw new ShieldError('ERR_SPIFFE_AGENT_UNAVAILABLE', {
        message: `no valid material from the SPIFFE Workload API at ${resolved.address.shown} within ${resolved.startupTimeoutMs} ms${reason !== undefined ? ` (last: ${reason})` : ''}`,
      });
    }
    return source;
  }

  /**
   * The X.509-SVID in use, its key and the trust bundles. Throws `ERR_SPIFFE_NOT_READY` once it has
   * expired, after {@link close}, or when the source was made without `x509`.
   */
  x509(): X509SvidMaterial {
    const material = this.x509Material;
    if (this.closed || material === undefined)
      throw new ShieldError('ERR_SPIFFE_NOT_READY', { detail: 'no X.509-SVID' });
    if (Date.now() >= material.expiresAt.getTime()) {
      throw new ShieldError('ERR_SPIFFE_NOT_READY', { detail: 'the X.509-SVID has expired' });
    }
    return material;
  }

  /** Call `listener` with each new, valid X.509 material (a rotation or a bundle change). Returns the unsubscribe function. */
  onX509(listener: (svid: X509SvidMaterial) => void): () => void {
    this.x509Listeners.add(listener);
    return () => this.x509Listeners.delete(listener);
  }

  /** The JWT bundles of every trust domain the agent trusts, by trust domain (needs `jwtBundles`). */
  jwtBundles(): ReadonlyMap<string, JwtBundle> {
    const bundles = this.jwtBundleSet;
    if (this.closed || bundles === undefined)
      throw new ShieldError('ERR_SPIFFE_NOT_READY', { detail: 'no JWT bundles' });
    return bundles;
  }

  /** Call `listener` with each new, valid set of JWT bundles. Returns the unsubscribe function. */
  onJwtBundles(listener: (bundles: ReadonlyMap<string, JwtBundle>) => void): () => void {
    this.jwtBundleListeners.add(listener);
    return () => this.jwtBundleListeners.delete(listener);
  }

  /**
   * A JWT-SVID for `audience` (one audience or several), e.g. as the subject token of an RFC 8693
   * token exchange. Cached per audience set and fetched again once half its lifetime has passed
   * (refresh ahead of expiry); one fetch at a time per audience set. When the agent cannot be
   * reached, a cached token with at least 5 s left is returned; otherwise it rejects with
   * `ERR_SPIFFE_JWT_SVID_UNAVAILABLE` (or `ERR_SPIFFE_SVID_INVALID` for a malformed answer).
   * A bad `audience` is a TypeError.
   *
   * @example
   * const { token, expiresAt, spiffeId } = await source.jwtSvid('https://sts.example.com');
   */
  async jwtSvid(audience: string | readonly string[], options: JwtSvidRequestOptions = {}): Promise<JwtSvid> {
    const audiences = checkAudience(audience);
    if (typeof options !== 'object' || options === null) throw new TypeError('"options" must be an object');
    for (const key of Object.keys(options)) {
      if (key !== 'spiffeId')
        throw new TypeError(`"options" has an unknown option "${key}"; known options: spiffeId`);
    }
    const wanted = options.spiffeId;
    if (wanted !== undefined && (typeof wanted !== 'string' || !wanted.startsWith('spiffe://'))) {
      throw new TypeError('"options.spiffeId" must be a SPIFFE ID');
    }
    if (this.closed) throw new ShieldError('ERR_SPIFFE_NOT_READY', { detail: 'the source is closed' });
    const key = JSON.stringify([audiences, wanted ?? '']);
    const now = Date.now();
    const cached = this.jwtCache.get(key);
    if (cached !== undefined && now < cached.refreshAt) return cached.svid;
    let pending = this.jwtInFlight.get(key);
    if (pending === undefined) {
      pending = this.fetchJwtSvid(audiences, wanted).finally(() => this.jwtInFlight.delete(key));
      this.jwtInFlight.set(key, pending);
    }
    try {
      const svid = await pending;
      this.cacheJwtSvid(key, svid);
      return svid;
    } catch (err) {
      const stillUsable =
        cached !== undefined && Date.now() + MIN_JWT_SVID_REMAINING_MS < cached.svid.expiresAt.getTime();
      if (stillUsable && !(isShieldError(err) && err.code === 'ERR_SPIFFE_SVID_INVALID')) {
        this.options.logger.warn(
          `JWT-SVID refresh failed (${isShieldError(err) ? (err.details.detail ?? err.code) : grpcReason(err)}); the cached one is used until ${cached.svid.expiresAt.toISOString()}`,
        );
        return cached.svid;
      }
      throw err;
    }
  }

  /** Readiness, as a health check reports it. */
  status(): WorkloadApiStatus {
    const now = Date.now();
    const connected = [...this.streams.values()].every((s) => s.connected);
    // A stream whose latest update was refused is connected, but its material is not the agent's latest.
    const current = connected && [...this.streams.values()].every((s) => s.reason === undefined);
    const material = this.x509Material;
    let state: WorkloadApiState;
    if (this.closed) state = 'closed';
    else if (material !== undefined && now >= material.expiresAt.getTime()) state = 'expired';
    else state = current ? 'ready' : 'stale';
    return Object.freeze({
      state,
      connected: !this.closed && connected,
      lastUpdate: this.lastUpdate !== undefined ? new Date(this.lastUpdate) : undefined,
      expiresAt: material?.expiresAt,
      spiffeId: material?.spiffeId,
      reason: state === 'ready' ? undefined : state === 'closed' ? 'closed' : (this.reason() ?? state),
    });
  }

  /**
   * Throws `ERR_SPIFFE_NOT_READY` (503) unless the source can serve: `ready`, or `stale` (the agent
   * is away but the last material is valid) unless `allowStale` is false. For a readiness probe.
   */
  assertReady(options: { allowStale?: boolean } = {}): void {
    const { state, reason } = this.status();
    if (state === 'ready' || (state === 'stale' && options.allowStale !== false)) return;
    throw new ShieldError('ERR_SPIFFE_NOT_READY', {
      detail: `SPIFFE source ${state}${reason !== undefined ? `: ${reason}` : ''}`,
    });
  }

  /** Stop the streams and close the channel. The material is no longer served. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const stream of this.streams.values()) {
      clearTimeout(stream.timer);
      stream.call?.cancel();
      stream.call = undefined;
      stream.connected = false;
    }
    this.x509Listeners.clear();
    this.jwtBundleListeners.clear();
    this.jwtCache.clear();
    this.client.close();
  }

  /** The latest problem of any stream. */
  private reason(): string | undefined {
    for (const s of this.streams.values()) if (s.reason !== undefined) return s.reason;
    return undefined;
  }

  private open(kind: Stream): void {
    let state = this.streams.get(kind);
    if (state === undefined) {
      state = { call: undefined, connected: false, failures: 0, timer: undefined, reason: undefined };
      this.streams.set(kind, state);
    }
    if (this.closed) return;
    const s = state;
    const method = kind === 'x509' ? 'FetchX509SVID' : 'FetchJWTBundles';
    const start = (
      this.client as unknown as Record<string, (req: object, md: unknown) => ClientReadableStream<unknown>>
    )[method];
    if (start === undefined) throw new Error(`the Workload API client has no ${method}`);
    const call = start.call(this.client, {}, workloadApiMetadata());
    s.call = call;
    let ended = false;
    const broken = (why: string): void => {
      if (ended) return;
      ended = true;
      if (s.call === call) s.call = undefined;
      if (this.closed) return;
      const wasConnected = s.connected;
      s.connected = false;
      s.reason = why;
      s.failures++;
      if (wasConnected)
        this.options.logger.warn(
          `Workload API ${kind} stream lost (${why}); the last valid material stays in use until it expires`,
        );
      const delay = Math.min(
        this.options.reconnectMaxDelayMs,
        this.options.reconnectInitialDelayMs * 2 ** Math.min(s.failures - 1, 20),
      );
      // Jitter, so that the workloads of one node do not reconnect in step after an agent restart.
      s.timer = setTimeout(() => this.open(kind), Math.round(delay * (0.8 + Math.random() * 0.4)));
      s.timer.unref();
    };
    call.on('data', (message: unknown) => {
      if (this.closed) return;
      try {
        if (kind === 'x509') this.acceptX509(message as X509SvidResponseMessage);
        else this.acceptJwtBundles(message as { bundles?: unknown });
        s.connected = true;
        s.failures = 0;
        s.reason = undefined;
      } catch (err) {
        // The update is refused, the previous material kept. The message names the problem only.
        const text = isShieldError(err) ? err.message : 'the update could not be read';
        s.reason = text;
        s.connected = true;
        this.options.logger.error(`${text}; the previous material stays in use`);
      }
    });
    call.on('error', (err: unknown) => broken(grpcReason(err)));
    call.on('end', () => broken('stream ended by the agent'));
    call.on('status', (st: { code: number }) => {
      if (st.code !== GrpcStatus.OK) broken(grpcReason(st));
    });
  }

  private acceptX509(message: X509SvidResponseMessage): void {
    const next = parseX509SvidResponse(message, { spiffeId: this.options.spiffeId, now: Date.now() });
    const previous = this.x509Material;
    this.lastUpdate = Date.now();
    this.x509Material = next;
    const same =
      previous !== undefined &&
      previous.chainPem === next.chainPem &&
      previous.keyPem === next.keyPem &&
      previous.bundlesPem === next.bundlesPem;
    if (!same) {
      this.options.logger.log(
        `X.509-SVID ${next.spiffeId} in use: sha256 ${next.fingerprint256}, valid until ${next.expiresAt.toISOString()}, ${next.bundles.size} trust domain(s)`,
      );
      for (const listener of this.x509Listeners) this.notify(() => listener(next));
    }
    this.checkFirstMaterial();
  }

  private acceptJwtBundles(message: { bundles?: unknown }): void {
    const next = parseJwtBundles(message);
    this.lastUpdate = Date.now();
    this.jwtBundleSet = next;
    this.options.logger.log(`JWT bundles in use for ${[...next.keys()].join(', ')}`);
    for (const listener of this.jwtBundleListeners) this.notify(() => listener(next));
    this.checkFirstMaterial();
  }

  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      // A failing subscriber must not make a valid update look refused.
      this.options.logger.warn(
        `a SPIFFE update listener failed: ${err instanceof Error ? err.name : typeof err}`,
      );
    }
  }

  private checkFirstMaterial(): void {
    if (this.firstMaterial === undefined) return;
    if (this.options.x509 && this.x509Material === undefined) return;
    if (this.options.jwtBundles && this.jwtBundleSet === undefined) return;
    const done = this.firstMaterial;
    this.firstMaterial = undefined;
    done();
  }

  private cacheJwtSvid(key: string, svid: JwtSvid): void {
    const issued = svid.issuedAt?.getTime() ?? Date.now();
    const expires = svid.expiresAt.getTime();
    const refreshAt = issued + Math.max(0, expires - issued) / 2;
    this.jwtCache.delete(key);
    this.jwtCache.set(key, { svid, refreshAt });
    while (this.jwtCache.size > this.options.jwtSvidCacheSize) {
      const oldest = this.jwtCache.keys().next().value;
      if (oldest === undefined) break;
      this.jwtCache.delete(oldest);
    }
  }

  private fetchJwtSvid(audience: string[], spiffeId: string | undefined): Promise<JwtSvid> {
    const unary = (this.client as unknown as Record<string, (...args: unknown[]) => unknown>).FetchJWTSVID;
    if (unary === undefined) return Promise.reject(new Error('the Workload API client has no FetchJWTSVID'));
    return new Promise<JwtSvid>((resolve, reject) => {
      unary.call(
        this.client,
        { audience, spiffe_id: spiffeId ?? '' },
        workloadApiMetadata(),
        { deadline: Date.now() + this.options.jwtSvidTimeoutMs },
        (err: ServiceError | null, response: { svids?: unknown } | undefined) => {
          if (err !== null || response === undefined) {
            reject(
              new ShieldError('ERR_SPIFFE_JWT_SVID_UNAVAILABLE', {
                detail: grpcReason(err),
                message: `no JWT-SVID from the Workload API at ${this.options.address.shown} (${grpcReason(err)})`,
                cause: err,
              }),
            );
            return;
          }
          try {
            const svids = Array.isArray(response.svids)
              ? (response.svids as Array<{ spiffe_id?: unknown }>)
              : [];
            const chosen = spiffeId === undefined ? svids[0] : svids.find((s) => s.spiffe_id === spiffeId);
            if (chosen === undefined) {
              throw new ShieldError('ERR_SPIFFE_SVID_INVALID', {
                message: 'JWT-SVID refused: the response holds no SVID',
              });
            }
            resolve(parseJwtSvid(chosen, audience, Date.now()));
          } catch (e) {
            reject(e);
          }
        },
      );
    });
  }
}
