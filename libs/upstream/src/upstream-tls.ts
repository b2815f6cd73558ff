import type { Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { Agent, buildConnector, Pool, ProxyAgent, type Dispatcher } from 'undici';
import { keyExchangeGroups, ShieldError } from '@inference-shield/core/internal';
import { watchClientCertAlert } from './upstream-error.mapping.js';
import { buildServerIdentityCheck } from './spki-pin.js';
import { UPSTREAM_CIPHERS } from './upstream.constants.js';
import type { UpstreamCounters } from './upstream-stats.js';
import type { ResolvedUpstreamOptions } from './upstream-options.interface.js';

/** The TLS material of one upstream, as loaded (and reloaded) from disk. */
export interface UpstreamTlsMaterial {
  /** Trusted CAs; undefined: Node's public roots. */
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** `tls.connect` options of one upstream: verification always on, whatever the environment says. */
export function upstreamTlsOptions(
  options: ResolvedUpstreamOptions,
  material: UpstreamTlsMaterial,
): ConnectionOptions & { timeout: number; maxCachedSessions: number } {
  const tls: ConnectionOptions & { timeout: number; maxCachedSessions: number } = {
    // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 (which only changes the default) has no effect here.
    rejectUnauthorized: true,
    minVersion: options.minTlsVersion,
    ciphers: UPSTREAM_CIPHERS,
    // X25519MLKEM768 first (key shares for it and X25519) where OpenSSL 3.5 offers it, else the
    // classical groups; probed once per process, never per connection.
    ecdhCurve: keyExchangeGroups().ecdhCurve,
    checkServerIdentity: buildServerIdentityCheck(options.pins),
    timeout: options.timeouts.connectMs,
    // A few resumable sessions per connector; a rotation builds a new connector, so a session
    // negotiated with the old client certificate is never resumed with the new one.
    maxCachedSessions: 32,
  };
  if (options.servername !== undefined) tls.servername = options.servername;
  if (material.ca !== undefined) tls.ca = material.ca;
  if (material.cert !== undefined && material.key !== undefined) {
    tls.cert = material.cert;
    tls.key = material.key;
  }
  return tls;
}

type Connector = buildConnector.connector;

/**
 * Wrap a connector: count each completed handshake, and refuse (defence in depth) any socket that
 * is not an authorized TLS socket, so no code path can hand undici an unverified connection.
 */
function countingConnector(inner: Connector, counters: UpstreamCounters): Connector {
  return (opts, callback) => {
    inner(opts, (...args: buildConnector.CallbackArgs) => {
      const [err, socket] = args;
      if (err !== null || socket === null) {
        callback(...args);
        return;
      }
      const tls = socket as Socket & Partial<Pick<TLSSocket, 'encrypted' | 'authorized' | 'isSessionReused'>>;
      if (tls.encrypted !== true || tls.authorized !== true) {
        socket.destroy();
        callback(
          new ShieldError('ERR_UPSTREAM_CERT_UNTRUSTED', {
            detail: 'connection is not a verified TLS socket',
          }),
          null,
        );
        return;
      }
      counters.handshakes++;
      if (tls.isSessionReused?.() === true) counters.resumedHandshakes++;
      watchClientCertAlert(socket as TLSSocket);
      callback(null, socket);
    });
  };
}

/** A dispatcher and a way to tell whether any request is still using it. */
export interface UpstreamPool {
  readonly dispatcher: Dispatcher;
  /** True while a request is queued, running, or streaming its body. */
  busy(): boolean;
  /** undici's pool figures summed over the pools (read by the telemetry gauge, at collection). */
  figures(): { connected: number; free: number; pending: number; running: number };
}

/**
 * The undici dispatcher of one upstream: an `Agent` with our connector, or a `ProxyAgent` that
 * tunnels through the egress proxy with HTTP CONNECT and runs the same TLS end to end inside.
 * Never installed as the global dispatcher. Its pools are kept so that a shutdown or a rotation
 * can wait for requests in flight (undici's `close()` cannot be cut short by `destroy()` later).
 */
export function buildUpstreamDispatcher(
  options: ResolvedUpstreamOptions,
  material: UpstreamTlsMaterial,
  counters: UpstreamCounters,
  proxyCa?: Buffer,
): UpstreamPool {
  const pools = new Set<Pool>();
  const busy = (): boolean => {
    for (const pool of pools) if (!pool.destroyed && pool.stats.size > 0) return true;
    return false;
  };
  const figures = (): ReturnType<UpstreamPool['figures']> => {
    const sum = { connected: 0, free: 0, pending: 0, running: 0 };
    for (const pool of pools) {
      if (pool.destroyed) continue;
      const s = pool.stats;
      sum.connected += s.connected;
      sum.free += s.free;
      sum.pending += s.pending;
      sum.running += s.running;
    }
    return sum;
  };
  const track = (pool: Pool): Pool => {
    pools.add(pool);
    return pool;
  };
  const tls = upstreamTlsOptions(options, material);
  const pool = {
    connections: options.pool.connections,
    keepAliveTimeout: options.pool.keepAliveMs,
    keepAliveMaxTimeout: options.pool.keepAliveMs,
    headersTimeout: options.timeouts.headersMs,
    bodyTimeout: options.timeouts.bodyIdleMs,
    // Only the configured origin is ever dispatched (checked before); one pool is enough.
    maxOrigins: 1,
  };
  if (options.egressProxy === undefined) {
    const connect = countingConnector(buildConnector(tls), counters);
    const dispatcher = new Agent({
      ...pool,
      factory: (origin: string | URL, opts: object) =>
        track(new Pool(origin, { ...(opts as Pool.Options), connect })),
    });
    return { dispatcher, busy, figures };
  }
  const proxyTls: ConnectionOptions & { timeout: number } = {
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    timeout: options.timeouts.connectMs,
  };
  if (proxyCa !== undefined) proxyTls.ca = proxyCa;
  const dispatcher = new ProxyAgent({
    ...pool,
    uri: options.egressProxy.url,
    proxyTunnel: true,
    requestTls: tls,
    proxyTls,
    factory: (origin: string | URL, opts: object) => {
      const o = opts as Pool.Options & { connect: Connector };
      return track(new Pool(origin, { ...o, connect: countingConnector(o.connect, counters) }));
    },
  });
  return { dispatcher, busy, figures };
}

/**
 * True when `NODE_TLS_REJECT_UNAUTHORIZED` asks Node to skip certificate checks. Our clients set
 * `rejectUnauthorized: true` explicitly, which the variable cannot override; it is reported because
 * it still weakens every other TLS client of the process.
 */
export function tlsVerificationDisabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NODE_TLS_REJECT_UNAUTHORIZED === '0';
}
