import type { NestApplicationOptions } from '@nestjs/common';
import type { ShieldError } from '@inference-shield/core/internal';
import type { CaSource, Tls12Cipher } from '@inference-shield/core/internal';

/** TLS versions the bootstrap accepts as a minimum; anything older is refused at start-up. */
export type HttpsMinVersion = 'TLSv1.2' | 'TLSv1.3';

/** TLS 1.2 cipher suites the bootstrap may offer: ECDHE key exchange with an AEAD cipher only. */
export type HttpsTls12Cipher = Tls12Cipher;

/**
 * TLS material that changes over time, given instead of files (a SPIFFE Workload API source, a
 * secret manager). `current()` is read at start-up and after each change `subscribe` announces;
 * the material is checked as files are, and a refused change keeps the previous material.
 * `@inference-shield/spiffe`'s `x509TlsSource(source)` is one.
 */
export interface HttpsTlsSource {
  /** The certificate chain and key (PEM), and the client CAs when `mtls.ca` is `{ tlsSource: true }`. */
  current(): {
    readonly cert: string | Buffer;
    readonly key: string | Buffer;
    readonly ca?: string | Buffer | undefined;
  };
  /** Call `onChange` whenever `current()` changes; returns the function that unsubscribes. */
  subscribe(onChange: () => void): () => void;
}

/** The server identity and the TLS policy. */
export interface HttpsTlsOptions {
  /** PEM file of the server certificate, optionally followed by its intermediates. Not with `source`. */
  cert?: string;
  /** PEM file of its unencrypted private key. Not with `source`. */
  key?: string;
  /**
   * The certificate and key from a {@link HttpsTlsSource} instead of `cert` and `key` files: new
   * connections get each new certificate, connections already open keep theirs.
   *
   * @example
   * tls: { source: x509TlsSource(await WorkloadApiSource.connect()) }
   */
  source?: HttpsTlsSource;
  /** `TLSv1.2` (default) or `TLSv1.3` for a TLS 1.3-only server. Nothing lower exists. */
  minVersion?: HttpsMinVersion;
  /**
   * TLS 1.2 suites to offer, a non-empty subset of Mozilla's "intermediate" list (the default, in
   * that order). TLS 1.3 suites are always the three standard AEAD suites.
   */
  ciphers?: HttpsTls12Cipher[];
}

/** `mtls.ca` taken from `tls.source` (its `ca`), following its changes. */
export interface HttpsCaFromTlsSource {
  readonly tlsSource: true;
}

/** Inbound mutual TLS: who may connect with a client certificate. */
export interface HttpsMtlsOptions {
  /**
   * `required`: the handshake fails without a client certificate that chains to `ca` (and is not
   * revoked by `crl`). `optional`: a certificate is asked for; without one (or with one that does
   * not verify) the handshake still succeeds and the route guards decide.
   */
  mode: 'required' | 'optional';
  /**
   * The CA certificate(s) client certificates must chain to: `{ file }`, a PEM file watched for
   * rotation with the certificate, or `{ pem }`, PEM text (a string or bytes, e.g. from a secret
   * manager) checked and loaded once. A bare string is refused.
   *
   * With `tls.source`, `{ tlsSource: true }` takes the CAs from the source (a SPIFFE trust bundle:
   * a CA dropped from it is refused on the next handshakes); `{ file }` is then refused.
   *
   * @example
   * ca: { file: '/etc/shield/client-ca.pem' }
   */
  ca: CaSource | HttpsCaFromTlsSource;
  /**
   * PEM file of the CA's CRL(s). Every certificate of the chain is then checked for revocation.
   * Needs `ca` as `{ file }`: the CRL is checked against the CA file and reloaded with it.
   */
  crl?: string;
}

/** Response headers added to every response. */
export interface HttpsHeadersOptions {
  /** `Strict-Transport-Security` max-age; default one year (31536000), at least one day. */
  hstsMaxAgeSeconds?: number;
  /** Adds `includeSubDomains` to HSTS (every subdomain must then serve HTTPS); default false. */
  hstsIncludeSubDomains?: boolean;
  /** Adds `preload` to HSTS (needs `includeSubDomains` and a max-age of at least one year); default false. */
  hstsPreload?: boolean;
  /** `Cache-Control` set before the handler runs (a handler may override it); default `no-store`. */
  cacheControl?: string;
}

/** Size limits on what a client may send. */
export interface HttpsLimitsOptions {
  /** Largest request head (request line + headers) in bytes, else 431; default 16384. */
  maxHeaderBytes?: number;
  /** Largest request body in bytes, else 413; default 1 MiB. */
  maxBodyBytes?: number;
  /** Requests served on one keep-alive connection before it is closed; default 0 (no limit). */
  maxRequestsPerSocket?: number;
  /**
   * Connections open at once (TLS handshakes in progress included); one more is closed as it is
   * accepted, before any TLS work, and counted in a warning. Default 10000 (1 to 1000000). Bounds
   * the memory and file descriptors a connection flood can take.
   */
  maxConnections?: number;
  /**
   * Connections open at once from one client address (IPv6 counted per /64, what one host is
   * usually given); one more is closed as it is accepted. Default 0: off, since behind a load
   * balancer that does not keep client addresses every connection comes from a few addresses.
   * Keeps one host from taking every `maxConnections` slot. 0, or 1 to 1000000.
   */
  maxConnectionsPerAddress?: number;
}

/** Time limits, in milliseconds. */
export interface HttpsTimeoutsOptions {
  /** From TCP accept to the end of the TLS handshake (first byte included); default 10000. */
  handshakeMs?: number;
  /** From the first byte of a request to the end of its headers, else 408; default 10000. */
  headersMs?: number;
  /** From the first byte of a request to the end of its body, else 408; default 30000. */
  requestMs?: number;
  /** Idle time before a keep-alive connection is closed; default 5000. */
  keepAliveMs?: number;
  /**
   * How often the header and request timeouts are checked; default 250. Node's own default is
   * 30 s, which lets a slowloris client hold a connection half a minute past `headersMs`.
   */
  connectionsCheckingIntervalMs?: number;
  /** How long `close()` waits for in-flight requests before closing their connections; default 10000. */
  shutdownGracePeriodMs?: number;
  /**
   * How long `close()` (and so SIGTERM in an app that calls it) keeps serving after readiness has
   * turned false, before it stops accepting; default 0 (0 to 600000). Set it a little above the
   * time a load balancer takes to see a failing readiness probe (Kubernetes: `periodSeconds` ×
   * `failureThreshold`), so no new request is routed to a replica that has stopped listening.
   * Answers during it say `Connection: close`, so keep-alive clients reconnect elsewhere.
   */
  drainDelayMs?: number;
  /**
   * A connection with bytes to send that the client does not take (it stopped reading) for this
   * long is closed; default 30000 (1000 to 3600000). Without it a client that never reads holds
   * its connection, and a slot of `limits.maxConnections`, for ever. A handler that is still
   * working (nothing to send yet) is not affected.
   */
  sendStallMs?: number;
}

/** What a certificate reload reports (public facts only, never key material). */
export interface HttpsCertificateInfo {
  /** SHA-256 of the server certificate, lowercase hex. */
  readonly fingerprint256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The files it was read from (`tls.source` for both when it came from a source). */
  readonly files: Readonly<{ cert: string; key: string; ca?: string; crl?: string }>;
}

/** Rotation without restart. */
export interface HttpsReloadOptions {
  /** Watch the certificate, key, CA and CRL files and reload when they change; default true. */
  watch?: boolean;
  /** Reload on `SIGHUP`; default true. */
  sighup?: boolean;
  /** Quiet time after the last file change before reloading; default 200 ms. */
  debounceMs?: number;
  /** Called after a new bundle is in use. */
  onReload?: (info: HttpsCertificateInfo) => void;
  /** Called when a replacement is refused (the previous bundle stays in use); it is also logged. */
  onReloadError?: (err: ShieldError) => void;
}

/**
 * The optional port-80 listener. Off unless configured. It never reaches the app: `GET`/`HEAD` get
 * a `308` to `https://<targetHost>[:<port>]<path>`, anything else a `400`.
 */
export interface HttpsRedirectOptions {
  /** Port to listen on (80 in production, 0 in tests). */
  port: number;
  /** Address to bind; default: the HTTPS listener's host. */
  host?: string;
  /**
   * Host name put in `Location`. Fixed by configuration: the request's `Host` header is never used,
   * so the listener cannot be turned into an open redirect.
   */
  targetHost: string;
  /** HTTPS port put in `Location`; default: the port the HTTPS listener is bound to (omitted if 443). */
  targetPort?: number;
}

/**
 * The Nest application options the bootstrap passes through (it owns the others). `bodyParser`
 * is Nest's: `false` leaves every route without a parser but the ones the host installs.
 */
export type HttpsNestOptions = Pick<
  NestApplicationOptions,
  'logger' | 'abortOnError' | 'bufferLogs' | 'autoFlushLogs' | 'cors' | 'rawBody' | 'bodyParser'
>;

/** Options of {@link createHttpsApp}. There is no option to serve plain HTTP or skip verification. */
export interface HttpsBootstrapOptions {
  tls: HttpsTlsOptions;
  mtls?: HttpsMtlsOptions;
  headers?: HttpsHeadersOptions;
  limits?: HttpsLimitsOptions;
  timeouts?: HttpsTimeoutsOptions;
  reload?: HttpsReloadOptions;
  redirect?: HttpsRedirectOptions;
  nest?: HttpsNestOptions;
}

/** {@link HttpsBootstrapOptions} after validation: every default filled in, frozen. */
export interface ResolvedHttpsOptions {
  readonly tls: {
    /** Undefined with `source`. */
    readonly cert: string | undefined;
    readonly key: string | undefined;
    readonly source: HttpsTlsSource | undefined;
    readonly minVersion: HttpsMinVersion;
    readonly ciphers: readonly HttpsTls12Cipher[];
  };
  readonly mtls:
    | {
        readonly mode: 'required' | 'optional';
        readonly ca: CaSource | HttpsCaFromTlsSource;
        readonly crl?: string;
      }
    | undefined;
  readonly headers: {
    readonly hstsMaxAgeSeconds: number;
    readonly hstsIncludeSubDomains: boolean;
    readonly hstsPreload: boolean;
    readonly cacheControl: string;
  };
  readonly limits: {
    readonly maxHeaderBytes: number;
    readonly maxBodyBytes: number;
    readonly maxRequestsPerSocket: number;
    readonly maxConnections: number;
    readonly maxConnectionsPerAddress: number;
  };
  readonly timeouts: {
    readonly handshakeMs: number;
    readonly headersMs: number;
    readonly requestMs: number;
    readonly keepAliveMs: number;
    readonly connectionsCheckingIntervalMs: number;
    readonly shutdownGracePeriodMs: number;
    readonly drainDelayMs: number;
    readonly sendStallMs: number;
  };
  readonly reload: {
    readonly watch: boolean;
    readonly sighup: boolean;
    readonly debounceMs: number;
    readonly onReload: ((info: HttpsCertificateInfo) => void) | undefined;
    readonly onReloadError: ((err: ShieldError) => void) | undefined;
  };
  readonly redirect:
    | {
        readonly port: number;
        readonly host?: string;
        readonly targetHost: string;
        readonly targetPort?: number;
      }
    | undefined;
  readonly nest: Readonly<HttpsNestOptions>;
}
