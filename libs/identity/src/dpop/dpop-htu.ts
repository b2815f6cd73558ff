/**
 * RFC 9449 §4.3 `htu` checks: the proof's URI, without query and fragment, must be the URI of
 * the request it came with. That URI is rebuilt from the configured public origin and the
 * request-target's path, never from the `Host` header. Both sides are normalised as RFC 9449
 * §4.3 asks (RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalisation): the WHATWG URL
 * parser lowercases scheme and host, drops a default port and removes dot-segments; we then
 * uppercase percent-encodings and decode those of unreserved characters.
 */

const MAX_HTU_LENGTH = 4096;
const PERCENT = /%([0-9A-Fa-f]{2})/g;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
// A `.` or `..` segment, each dot literal or percent-encoded in either case.
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?=\/|$)/i;
// Only used to parse a path: never contacted, never compared.
const PATH_BASE = 'https://path.invalid';

function normalisePercent(path: string): string {
  return path.replace(PERCENT, (_, hex: string) => {
    const ch = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

/**
 * The normalised path of a request-target in origin form (`/v1/x?y=1`), or `undefined` for any
 * other form (absolute-form, `*`): such a request cannot be matched to a proof.
 */
export function requestPathOf(target: string): string | undefined {
  if (typeof target !== 'string' || !target.startsWith('/') || target.length > MAX_HTU_LENGTH)
    return undefined;
  const end = target.search(/[?#]/);
  const path = end === -1 ? target : target.slice(0, end);
  // The router sees the raw path: Express and Fastify route `/v1/admin/../models` to
  // `/v1/admin/:x/models`, while URL parsing would resolve it to `/v1/models`, so a proof made for
  // one handler would pass on another. A request path with dot-segments (literal or `%2e`) or a
  // backslash (which URL parsing turns into `/`) matches no proof.
  if (path.includes('\\') || DOT_SEGMENT.test(path)) return undefined;
  // Concatenated, not resolved against a base: `//host/x` stays a path.
  let url: URL;
  try {
    url = new URL(`${PATH_BASE}${path}`);
  } catch {
    return undefined;
  }
  return normalisePercent(url.pathname);
}

/**
 * Whether a proof's `htu` names one of `origins` and the path `requestPath` (from
 * {@link requestPathOf}). Query and fragment of `htu` are ignored (RFC 9449 §4.3); user info is
 * refused.
 */
export function htuMatches(htu: string, requestPath: string, origins: ReadonlySet<string>): boolean {
  if (htu.length === 0 || htu.length > MAX_HTU_LENGTH) return false;
  let url: URL;
  try {
    url = new URL(htu);
  } catch {
    return false;
  }
  if (url.username !== '' || url.password !== '') return false;
  if (!origins.has(url.origin)) return false;
  return normalisePercent(url.pathname) === requestPath;
}
