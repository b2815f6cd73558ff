import { cipherString } from '@inference-shield/core/internal';
/** Resolved module options (`ResolvedUpstreamModuleOptions`). */
export const UPSTREAM_OPTIONS = Symbol.for('@inference-shield/upstream:options');
/** The `UpstreamRegistry` holding every client, created at start-up. */
export const UPSTREAM_REGISTRY = Symbol.for('@inference-shield/upstream:registry');
/** Names declared to `forRootAsync` (the factory's upstreams must match them). */
export const UPSTREAM_DECLARED_NAMES = Symbol.for('@inference-shield/upstream:declared-names');

/** The injection token of the `UpstreamClient` named `name`. */
export function upstreamClientToken(name: string): string {
  return `@inference-shield/upstream:client:${name}`;
}

/** The injection token of the `UpstreamProxy` named `name`. */
export function upstreamProxyToken(name: string): string {
  return `@inference-shield/upstream:proxy:${name}`;
}

/** Upstream names become injection tokens and log labels: keep them short and plain. */
export const UPSTREAM_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/**
 * Cipher suites offered to upstreams: core's one policy (TLS 1.3 AEAD suites, then ECDHE with
 * AES-GCM or ChaCha20-Poly1305 for TLS 1.2: no CBC, no static RSA, no SHA-1 MAC).
 */
export const UPSTREAM_CIPHERS = cipherString();

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1, plus the legacy `keep-alive` and `proxy-connection`): they
 * describe one connection and must never be forwarded. Fields named in `Connection` are added per
 * message.
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Request headers the proxy never forwards, whatever the allow-list says: the caller's credentials
 * (the upstream gets its own), its cookies, and fields the client sets itself. `host` is set from
 * the upstream origin; `content-length` from the buffered body.
 */
export const NEVER_FORWARDED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  'authorization',
  'cookie',
  'host',
  'content-length',
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-api-key',
  'api-key',
  'openai-organization',
  'openai-project',
]);

/** Response headers never returned to the caller: the upstream's cookies, and hop-by-hop fields. */
export const NEVER_RETURNED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  'set-cookie',
  'www-authenticate',
  'openai-organization',
  'openai-project',
]);

/** Request headers the proxy forwards by default. */
export const DEFAULT_PROXY_REQUEST_HEADERS: readonly string[] = [
  'accept',
  'content-type',
  'openai-beta',
  'user-agent',
  'x-request-id',
  'idempotency-key',
];

/** Response headers the proxy returns by default (plus any `openai-*` but those refused above). */
export const DEFAULT_PROXY_RESPONSE_HEADERS: readonly string[] = [
  'content-type',
  'content-length',
  // Forwarded bytes are not decoded, so their encoding must travel with them.
  'content-encoding',
  'cache-control',
  'retry-after',
  'x-request-id',
];

/** Upstream statuses whose body the proxy returns as is: errors the caller caused. */
export const DEFAULT_PASS_THROUGH_STATUSES: readonly number[] = [400, 404, 409, 413, 415, 422, 429];

/** Default header of the caller assertion. */
export const DEFAULT_ASSERTION_HEADER = 'x-shield-caller-assertion';

/** An RFC 9110 field name (token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
