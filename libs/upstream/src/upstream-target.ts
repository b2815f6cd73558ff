import { ShieldError } from '@inference-shield/core/internal';

/** What a request may target: one origin, under one path prefix (ending in `/`). */
export interface UpstreamScope {
  readonly origin: string;
  readonly baseUrl: string;
  readonly pathPrefix: string;
}

/** Longest request target accepted (path and query), far above any real API path. */
const MAX_TARGET_LENGTH = 8 * 1024;
// Encoded separators survive WHATWG normalization and are decoded again by some servers, turning
// `/v1/..%2fadmin` into a path outside the prefix: refuse them outright.
const ENCODED_SEPARATOR = /%2f|%5c|%00/i;

/**
 * Resolve a request target against an upstream and refuse anything outside it (no SSRF through
 * the client): the result must have the upstream's origin (scheme, host and port) and a path equal
 * to or under its base path, after WHATWG normalization (`..`, `%2e%2e`, `\`). Relative inputs
 * resolve against the base URL. Throws `ERR_UPSTREAM_ORIGIN_MISMATCH` before any connection.
 */
export function resolveUpstreamTarget(scope: UpstreamScope, input: string | URL): URL {
  const text = typeof input === 'string' ? input : input.href;
  if (text.length > MAX_TARGET_LENGTH) {
    throw new ShieldError('ERR_UPSTREAM_ORIGIN_MISMATCH', { detail: 'request target too long' });
  }
  let url: URL;
  try {
    url = new URL(text, scope.baseUrl);
  } catch (err) {
    throw new ShieldError('ERR_UPSTREAM_ORIGIN_MISMATCH', {
      detail: 'request target is not a URL',
      cause: err,
    });
  }
  if (url.origin !== scope.origin || url.protocol !== 'https:') {
    throw new ShieldError('ERR_UPSTREAM_ORIGIN_MISMATCH', { detail: 'request target has another origin' });
  }
  if (url.username !== '' || url.password !== '') {
    throw new ShieldError('ERR_UPSTREAM_ORIGIN_MISMATCH', { detail: 'request target carries credentials' });
  }
  const path = url.pathname;
  if (!(path.startsWith(scope.pathPrefix) || `${path}/` === scope.pathPrefix)) {
    throw new ShieldError('ERR_UPSTREAM_ORIGIN_MISMATCH', {
      detail: 'request target is outside the base path',
    });
  }
  if (ENCODED_SEPARATOR.test(path)) {
    throw new ShieldError('ERR_UPSTREAM_ORIGIN_MISMATCH', {
      detail: 'request target has an encoded separator',
    });
  }
  url.hash = '';
  return url;
}

/**
 * The target of a path relative to the upstream's base path: `chat/completions` and
 * `/chat/completions` both name `<baseUrl>chat/completions`. Checked like {@link resolveUpstreamTarget}.
 */
export function resolveUpstreamPath(scope: UpstreamScope, path: string): URL {
  if (typeof path !== 'string') {
    throw new ShieldError('ERR_UPSTREAM_ORIGIN_MISMATCH', { detail: 'request path is not a string' });
  }
  // A leading `//` would make the rest a host name; strip every leading slash instead.
  return resolveUpstreamTarget(scope, `${scope.baseUrl}${path.replace(/^\/+/, '')}`);
}

// A path of unreserved characters and "/", with no dot segment and no empty segment, resolves to
// itself: no URL parsing needed. Anything else (%, \\, dots, other characters) takes the full check.
const PLAIN_PATH = /^[A-Za-z0-9._~/-]*$/;
const DOT_OR_EMPTY_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)|\/\//;
const PLAIN_QUERY = /^[A-Za-z0-9._~\-=&+,:@/%]*$/;

/**
 * The request target (`/base/path?query`) of a path relative to the base path, for the hot path
 * of `request()`: plain paths are joined directly, everything else goes through
 * {@link resolveUpstreamPath}. Same refusals.
 */
export function upstreamRequestTarget(scope: UpstreamScope, path: string): string {
  if (typeof path === 'string' && path.length <= MAX_TARGET_LENGTH) {
    const q = path.indexOf('?');
    const rawPath = (q < 0 ? path : path.slice(0, q)).replace(/^\/+/, '');
    const query = q < 0 ? '' : path.slice(q);
    if (PLAIN_PATH.test(rawPath) && !DOT_OR_EMPTY_SEGMENT.test(rawPath) && PLAIN_QUERY.test(query.slice(1))) {
      return `${scope.pathPrefix}${rawPath}${query}`;
    }
  }
  const url = resolveUpstreamPath(scope, path);
  return `${url.pathname}${url.search}`;
}
