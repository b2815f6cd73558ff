import type { CaSource } from '@inference-shield/core/internal';
import type { UpstreamTlsSource } from './upstream-tls-source.js';
export type { UpstreamTlsSource };
import type {
  ResolvedUpstreamCredential,
  UpstreamCredentialOptions,
} from './credentials/credential-options.interface.js';
/** Where an upstream API key is read from at start-up. The value itself never appears in options. */
export type UpstreamSecretSource = { readonly env: string } | { readonly file: string };

/** The PEM files of the client certificate presented to the upstream (mTLS). */
export interface UpstreamClientCertificateOptions {
  /** Leaf certificate (optionally followed by intermediates), PEM. Its EKU must allow clientAuth. */
  readonly cert: string;
  /** Its unencrypted private key, PEM. */
  readonly key: string;
  /** Watch the files and use a new certificate for new connections; default `true`. */
  readonly watch?: boolean;
}

/** Timeouts towards one upstream; every one is bounded (no "infinite"). */
export interface UpstreamTimeoutOptions {
  /** TCP connect plus TLS handshake; default 5 000 ms. */
  readonly connectMs?: number;
  /** From the request sent to the response headers; default 120 000 ms (a slow non-streamed completion). */
  readonly headersMs?: number;
  /** Longest silence between two body chunks; default 60 000 ms. */
  readonly bodyIdleMs?: number;
}

/** The connection pool of one upstream. */
export interface UpstreamPoolOptions {
  /** Most connections open at once; default 16. */
  readonly connections?: number;
  /** How long an idle connection is kept; default 30 000 ms. */
  readonly keepAliveMs?: number;
}

/** An egress proxy reached with HTTP `CONNECT`; TLS stays end to end between us and the upstream. */
export interface UpstreamEgressProxyOptions {
  /** `http://proxy:3128` or `https://proxy:3129` (no credentials in the URL). */
  readonly url: string;
  /** CAs trusted for an `https:` proxy (`{ file }` or `{ pem }`); default: Node's public roots. */
  readonly ca?: CaSource;
}

/** How the proxy forwards one upstream (see `UpstreamProxy`). */
export interface UpstreamProxyOptions {
  /** Request headers forwarded besides the default allow-list (`content-type`, `accept`, ...). */
  readonly requestHeaders?: readonly string[];
  /** Response headers returned besides the default allow-list (`content-type`, `openai-*`, ...). */
  readonly responseHeaders?: readonly string[];
  /** Largest request body forwarded; default 1 MiB, at most 64 MiB. Bigger: 413. */
  readonly maxRequestBodyBytes?: number;
  /**
   * Upstream statuses whose body is returned to the caller as is (the caller's own mistakes);
   * default `[400, 404, 409, 413, 415, 422, 429]`. Any other non-2xx becomes a 502.
   */
  readonly passThroughStatuses?: readonly number[];
  /** Send a signed assertion of the verified caller (needs the module's `callerAssertion`). */
  readonly assertCaller?: boolean;
}

/** One named upstream. */
export interface UpstreamOptions {
  /** `https:` URL; requests may only go to this origin and below this path. */
  readonly baseUrl: string;
  /**
   * The CAs trusted for this upstream: a PEM file (`{ file }`, watched for rotation with the client
   * certificate) or PEM text (`{ pem }`); default: Node's public roots.
   */
  readonly ca?: CaSource;
  /** Client certificate for mTLS. */
  readonly clientCertificate?: UpstreamClientCertificateOptions;
  /**
   * The client certificate from a source instead of files (not with `clientCertificate`): new
   * connections present each new certificate, requests in flight finish on the old connections.
   *
   * @example
   * clientCertificateSource: x509TlsSource(await WorkloadApiSource.connect(), { trust: false })
   */
  readonly clientCertificateSource?: UpstreamTlsSource;
  /** TLS SNI and the name checked in the certificate; default: the host of `baseUrl`. */
  readonly servername?: string;
  /** Lowest TLS version; default `'TLSv1.2'`. */
  readonly minTlsVersion?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * SHA-256 pins of the upstream leaf certificate's public key (SPKI), base64, optionally prefixed
   * `sha256/`. When set, a key not listed is refused before any request byte is sent.
   */
  readonly pins?: readonly string[];
  readonly timeouts?: UpstreamTimeoutOptions;
  readonly pool?: UpstreamPoolOptions;
  readonly egressProxy?: UpstreamEgressProxyOptions;
  /** The upstream's API key, added to every request; read once at start-up, never logged. */
  readonly apiKey?: UpstreamSecretSource;
  /** Header carrying `apiKey`: default `authorization` (as `Bearer <key>`); another name gets the bare key. */
  readonly apiKeyHeader?: string;
  /**
   * A keyless credential: a short-lived token from a token endpoint (client credentials, token
   * exchange of the workload's identity, or the client certificate itself), sent as
   * `Authorization: Bearer`. Instead of `apiKey` (both at once are refused).
   */
  readonly credential?: UpstreamCredentialOptions;
  /** Settings of the streaming proxy for this upstream. */
  readonly proxy?: UpstreamProxyOptions;
}

/** The verified caller the proxy asserts to an upstream: structurally a `@inference-shield/identity` principal. */
export interface CallerIdentity {
  readonly subject: string;
  readonly issuer?: string;
  readonly scopes?: readonly string[];
  readonly method?: string;
}

/**
 * Reads the verified caller from an inbound request, as the framework hands it to the handler
 * (Express `req`, Fastify `request`); `principalOf` of `@inference-shield/identity` fits.
 */
export type CallerResolver = (req: object) => CallerIdentity | undefined;

/** Identity propagation: a short-lived JWT naming the verified caller, signed by this service. */
export interface CallerAssertionOptions {
  /** Our own `iss`: the identifier of this service, e.g. `spiffe://shield.local/model-server`. */
  readonly issuer: string;
  /** Returns the verified caller of a request; required (no guess from headers). */
  readonly caller: CallerResolver;
  /** PKCS#8 PEM of an EC P-256 key; default: an ephemeral key generated at start-up. */
  readonly privateKeyFile?: string;
  /** Lifetime in seconds, 1 to 60; default 30. */
  readonly ttlSeconds?: number;
  /** Header carrying the assertion; default `x-shield-caller-assertion`. */
  readonly header?: string;
}

/** Options of `UpstreamModule.forRoot`. */
export interface UpstreamModuleOptions {
  /** Upstreams by name, as `@InjectUpstream(name)` takes them. */
  readonly upstreams: Readonly<Record<string, UpstreamOptions>>;
  /** Signing of caller assertions for proxies with `assertCaller: true`. */
  readonly callerAssertion?: CallerAssertionOptions;
}

/** One upstream after start-up parsing: every default filled in, the API key read, frozen. */
export interface ResolvedUpstreamOptions {
  readonly name: string;
  /** `baseUrl` with a trailing slash, as a string (URL objects are mutable). */
  readonly baseUrl: string;
  readonly origin: string;
  /** The path prefix every request must stay under, ending in `/`. */
  readonly pathPrefix: string;
  readonly ca?: CaSource;
  readonly clientCertificate?: Required<UpstreamClientCertificateOptions>;
  readonly clientCertificateSource?: UpstreamTlsSource;
  readonly servername?: string;
  readonly minTlsVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Base64 SHA-256 of allowed SPKIs. */
  readonly pins: readonly string[];
  readonly timeouts: Required<UpstreamTimeoutOptions>;
  readonly pool: Required<UpstreamPoolOptions>;
  readonly egressProxy?: { readonly url: string; readonly ca?: CaSource };
  /** Name (lowercase) and value of the credential header; the value is never logged. */
  readonly credential?: { readonly header: string; readonly value: string };
  /** The keyless credential, parsed (loaded when the client is created). */
  readonly tokenCredential?: ResolvedUpstreamCredential;
  readonly proxy: ResolvedUpstreamProxyOptions;
}

/** Proxy settings after parsing. */
export interface ResolvedUpstreamProxyOptions {
  readonly requestHeaders: ReadonlySet<string>;
  readonly responseHeaders: ReadonlySet<string>;
  readonly maxRequestBodyBytes: number;
  readonly passThroughStatuses: ReadonlySet<number>;
  readonly assertCaller: boolean;
}

/** Caller-assertion settings after parsing (the key is loaded separately). */
export interface ResolvedCallerAssertionOptions {
  readonly issuer: string;
  readonly caller: CallerResolver;
  readonly privateKeyFile?: string;
  readonly ttlSeconds: number;
  readonly header: string;
}

/** The module options after parsing. */
export interface ResolvedUpstreamModuleOptions {
  readonly upstreams: Readonly<Record<string, ResolvedUpstreamOptions>>;
  readonly callerAssertion?: ResolvedCallerAssertionOptions;
}
