import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  deepFreeze,
  describeValue,
  type ShieldError,
} from '@inference-shield/core/internal';
import { assertCaSource, copyCaSource, type CaSource } from '@inference-shield/core/internal';
import type {
  HttpsCaFromTlsSource,
  HttpsCertificateInfo,
  HttpsTlsSource,
  HttpsMinVersion,
  HttpsNestOptions,
  HttpsTls12Cipher,
  ResolvedHttpsOptions,
} from './https-options.interface.js';
import { TLS12_CIPHERS } from './tls-policy.js';

const TOP_KEYS = ['tls', 'mtls', 'headers', 'limits', 'timeouts', 'reload', 'redirect', 'nest'] as const;
const TLS_KEYS = ['cert', 'key', 'source', 'minVersion', 'ciphers'] as const;
const MTLS_KEYS = ['mode', 'ca', 'crl'] as const;
const HEADER_KEYS = ['hstsMaxAgeSeconds', 'hstsIncludeSubDomains', 'hstsPreload', 'cacheControl'] as const;
const LIMIT_KEYS = [
  'maxHeaderBytes',
  'maxBodyBytes',
  'maxRequestsPerSocket',
  'maxConnections',
  'maxConnectionsPerAddress',
] as const;
const TIMEOUT_KEYS = [
  'handshakeMs',
  'headersMs',
  'requestMs',
  'keepAliveMs',
  'connectionsCheckingIntervalMs',
  'shutdownGracePeriodMs',
  'drainDelayMs',
  'sendStallMs',
] as const;
const RELOAD_KEYS = ['watch', 'sighup', 'debounceMs', 'onReload', 'onReloadError'] as const;
const REDIRECT_KEYS = ['port', 'host', 'targetHost', 'targetPort'] as const;
/** Nest options passed through. `httpsOptions`, `bodyParser`, `forceCloseConnections`... are ours. */
const NEST_KEYS = [
  'logger',
  'abortOnError',
  'bufferLogs',
  'autoFlushLogs',
  'cors',
  'rawBody',
  'bodyParser',
] as const;

/** Versions a caller might ask for, with the reason each is refused. */
const REFUSED_VERSIONS: Readonly<Record<string, string>> = {
  SSLv2: 'SSLv2 is broken (RFC 6176)',
  SSLv3: 'SSLv3 is broken (RFC 7568, POODLE)',
  TLSv1: 'TLS 1.0 is deprecated (RFC 8996)',
  'TLSv1.1': 'TLS 1.1 is deprecated (RFC 8996)',
};

const SECOND = 1000;
const ONE_DAY_S = 24 * 60 * 60;
const ONE_YEAR_S = 365 * ONE_DAY_S;
const MAX_PORT = 65_535;

/** Header values are written as they are: refuse anything that could split a header. */
const SAFE_HEADER_VALUE = /^[\x20-\x7e]{1,256}$/;
/** RFC 1123 host name or an IP literal (IPv6 in brackets), for the redirect `Location`. */
const HOST_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/i;

function optionalObject(field: string, value: unknown, keys: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  assertKnownKeys(field, value, keys);
  return value;
}

function integer(field: string, value: unknown, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  assertInteger(field, v, min, max);
  return v;
}

function bool(field: string, value: unknown, fallback: boolean): boolean {
  const v = value ?? fallback;
  assertBoolean(field, v);
  return v;
}

function optionalFunction<A extends unknown[]>(
  field: string,
  value: unknown,
): ((...args: A) => void) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function')
    throw new TypeError(`"${field}" must be a function, got ${describeValue(value)}`);
  return value as (...args: A) => void;
}

function resolveMinVersion(value: unknown): HttpsMinVersion {
  if (value === undefined) return 'TLSv1.2';
  if (typeof value === 'string' && Object.hasOwn(REFUSED_VERSIONS, value)) {
    throw new TypeError(
      `"tls.minVersion" must be "TLSv1.2" or "TLSv1.3", got "${value}": ${REFUSED_VERSIONS[value]}`,
    );
  }
  assertOneOf('tls.minVersion', value, ['TLSv1.2', 'TLSv1.3'] as const);
  return value;
}

function resolveCiphers(value: unknown): readonly HttpsTls12Cipher[] {
  if (value === undefined) return TLS12_CIPHERS;
  if (!Array.isArray(value) || value.length === 0) {
    throw new TypeError(
      `"tls.ciphers" must be a non-empty array of TLS 1.2 suite names, got ${describeValue(value)}`,
    );
  }
  const seen = new Set<string>();
  for (const [i, suite] of value.entries()) {
    if (typeof suite !== 'string' || !(TLS12_CIPHERS as readonly string[]).includes(suite)) {
      // Only ECDHE + AEAD suites: anything else would reopen non-forward-secret or CBC suites.
      throw new TypeError(
        `"tls.ciphers[${i}]" must be one of ${TLS12_CIPHERS.join(', ')} (ECDHE with AES-GCM or ChaCha20-Poly1305), got ${describeValue(suite)}`,
      );
    }
    if (seen.has(suite)) throw new TypeError(`"tls.ciphers[${i}]" repeats "${suite}"`);
    seen.add(suite);
  }
  return [...(value as HttpsTls12Cipher[])];
}

function resolveNest(value: unknown): HttpsNestOptions {
  if (value === undefined) return {};
  assertObject('nest', value);
  for (const key of Object.keys(value)) {
    if (!(NEST_KEYS as readonly string[]).includes(key)) {
      const ours = ['httpsOptions', 'forceCloseConnections', 'return503OnClosing'].includes(key);
      throw new TypeError(
        ours
          ? `"nest.${key}" is set by the HTTPS bootstrap and cannot be overridden`
          : `"nest" has an unknown option "${key}"; known options: ${NEST_KEYS.join(', ')}`,
      );
    }
  }
  if (value.abortOnError !== undefined) assertBoolean('nest.abortOnError', value.abortOnError);
  if (value.bufferLogs !== undefined) assertBoolean('nest.bufferLogs', value.bufferLogs);
  if (value.autoFlushLogs !== undefined) assertBoolean('nest.autoFlushLogs', value.autoFlushLogs);
  if (value.rawBody !== undefined) assertBoolean('nest.rawBody', value.rawBody);
  if (value.bodyParser !== undefined) assertBoolean('nest.bodyParser', value.bodyParser);
  // Shallow copy, frozen here so deepFreeze leaves the caller's logger or CORS objects alone.
  return Object.freeze({ ...(value as HttpsNestOptions) });
}

function resolveHost(field: string, value: unknown): string {
  assertString(field, value);
  if (!(HOST_NAME.test(value) || IPV6_LITERAL.test(value)) || value.length > 253) {
    throw new TypeError(
      `"${field}" must be a host name or a bracketed IPv6 address, got ${describeValue(value)}`,
    );
  }
  return value.toLowerCase();
}

/** `tls.source` checked: an object with `current` and `subscribe`, and then no `cert` or `key`. */
function tlsSourceOf(tls: Record<string, unknown>): HttpsTlsSource | undefined {
  const source = tls.source;
  if (source === undefined) return undefined;
  const s = source as Partial<Record<'current' | 'subscribe', unknown>> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.current !== 'function' ||
    typeof s.subscribe !== 'function'
  ) {
    throw new TypeError(
      `"tls.source" must be an object with current() and subscribe(), got ${describeValue(source)}`,
    );
  }
  if (tls.cert !== undefined || tls.key !== undefined) {
    throw new TypeError('"tls.source" replaces "tls.cert" and "tls.key": give one or the other');
  }
  return source as HttpsTlsSource;
}

function isCaFromTlsSource(ca: unknown): boolean {
  if (typeof ca !== 'object' || ca === null || !('tlsSource' in ca)) return false;
  assertKnownKeys('mtls.ca', ca, ['tlsSource']);
  if (ca.tlsSource !== true) throw new TypeError('"mtls.ca.tlsSource" must be true');
  return true;
}

/**
 * Validate the bootstrap options and fill in every default. Pure: it reads no file (certificates are
 * checked by the bootstrap, before Nest starts). A bad field throws a `TypeError` naming it; unknown
 * keys are refused, so a typo such as `minVersoin` cannot silently fall back to a default. There is
 * no `http`, `insecure` or `rejectUnauthorized` option: plaintext and unverified peers do not exist.
 *
 * @example
 * const resolved = resolveHttpsOptions({ tls: { cert: 'pki/localhost.pem', key: 'pki/localhost-key.pem' } });
 */
export function resolveHttpsOptions(raw: unknown): ResolvedHttpsOptions {
  assertKnownKeys('options', raw, TOP_KEYS);

  assertKnownKeys('tls', raw.tls, TLS_KEYS);
  const tlsRaw = raw.tls;
  const source = tlsSourceOf(tlsRaw);
  if (source === undefined) {
    assertString('tls.cert', tlsRaw.cert);
    assertString('tls.key', tlsRaw.key);
  }
  const tls = {
    cert: source === undefined ? (tlsRaw.cert as string) : undefined,
    key: source === undefined ? (tlsRaw.key as string) : undefined,
    source,
    minVersion: resolveMinVersion(tlsRaw.minVersion),
    ciphers: resolveCiphers(tlsRaw.ciphers),
  };

  let mtls: ResolvedHttpsOptions['mtls'];
  if (raw.mtls !== undefined) {
    assertKnownKeys('mtls', raw.mtls, MTLS_KEYS);
    const m = raw.mtls;
    assertOneOf('mtls.mode', m.mode, ['required', 'optional'] as const);
    let ca: CaSource | HttpsCaFromTlsSource;
    if (isCaFromTlsSource(m.ca)) {
      if (source === undefined)
        throw new TypeError('"mtls.ca" is { tlsSource: true } but "tls.source" is not set');
      ca = Object.freeze({ tlsSource: true as const });
    } else {
      // Core's one check of a `ca` option: { file } or { pem }; a bare string is refused.
      assertCaSource('mtls.ca', m.ca);
      ca = copyCaSource(m.ca);
      if (source !== undefined && 'file' in ca) {
        // Files are watched as one bundle with the certificate; with a source there is none.
        throw new TypeError('"mtls.ca" must be { tlsSource: true } or { pem } when "tls.source" is set');
      }
    }
    if (m.crl !== undefined) {
      assertString('mtls.crl', m.crl);
      if (!('file' in ca)) {
        // A CRL is checked against the CA file and reloaded with it, as one bundle.
        throw new TypeError(
          '"mtls.crl" needs "mtls.ca" as { file }: a CRL is checked against its CA file and both are watched for rotation together',
        );
      }
    }
    mtls = m.crl !== undefined ? { mode: m.mode, ca, crl: m.crl } : { mode: m.mode, ca };
  }

  const h = optionalObject('headers', raw.headers, HEADER_KEYS);
  const hstsMaxAgeSeconds = integer(
    'headers.hstsMaxAgeSeconds',
    h.hstsMaxAgeSeconds,
    ONE_YEAR_S,
    ONE_DAY_S,
    2 * ONE_YEAR_S,
  );
  const hstsIncludeSubDomains = bool('headers.hstsIncludeSubDomains', h.hstsIncludeSubDomains, false);
  const hstsPreload = bool('headers.hstsPreload', h.hstsPreload, false);
  if (hstsPreload && (!hstsIncludeSubDomains || hstsMaxAgeSeconds < ONE_YEAR_S)) {
    // hstspreload.org refuses a preload directive without includeSubDomains and a year of max-age.
    throw new TypeError(
      '"headers.hstsPreload" needs "headers.hstsIncludeSubDomains": true and "headers.hstsMaxAgeSeconds" of at least 31536000',
    );
  }
  const cacheControl = h.cacheControl ?? 'no-store';
  if (typeof cacheControl !== 'string' || !SAFE_HEADER_VALUE.test(cacheControl)) {
    throw new TypeError(
      `"headers.cacheControl" must be 1 to 256 printable ASCII characters, got ${describeValue(cacheControl)}`,
    );
  }

  const l = optionalObject('limits', raw.limits, LIMIT_KEYS);
  const limits = {
    // Below 1 KiB even a normal browser request fails; above 64 KiB the head is a memory lever.
    maxHeaderBytes: integer('limits.maxHeaderBytes', l.maxHeaderBytes, 16 * 1024, 1024, 64 * 1024),
    maxBodyBytes: integer('limits.maxBodyBytes', l.maxBodyBytes, 1024 * 1024, 1, 1024 * 1024 * 1024),
    maxRequestsPerSocket: integer('limits.maxRequestsPerSocket', l.maxRequestsPerSocket, 0, 0, 1_000_000),
    maxConnections: integer('limits.maxConnections', l.maxConnections, 10_000, 1, 1_000_000),
    maxConnectionsPerAddress: integer(
      'limits.maxConnectionsPerAddress',
      l.maxConnectionsPerAddress,
      0,
      0,
      1_000_000,
    ),
  };

  const t = optionalObject('timeouts', raw.timeouts, TIMEOUT_KEYS);
  // Zero would mean "no timeout" to Node: every timeout here has a positive floor instead.
  const timeouts = {
    handshakeMs: integer('timeouts.handshakeMs', t.handshakeMs, 10 * SECOND, 100, 120 * SECOND),
    headersMs: integer('timeouts.headersMs', t.headersMs, 10 * SECOND, 100, 300 * SECOND),
    requestMs: integer('timeouts.requestMs', t.requestMs, 30 * SECOND, 100, 3600 * SECOND),
    keepAliveMs: integer('timeouts.keepAliveMs', t.keepAliveMs, 5 * SECOND, 100, 600 * SECOND),
    connectionsCheckingIntervalMs: integer(
      'timeouts.connectionsCheckingIntervalMs',
      t.connectionsCheckingIntervalMs,
      250,
      10,
      5 * SECOND,
    ),
    shutdownGracePeriodMs: integer(
      'timeouts.shutdownGracePeriodMs',
      t.shutdownGracePeriodMs,
      10 * SECOND,
      0,
      600 * SECOND,
    ),
    drainDelayMs: integer('timeouts.drainDelayMs', t.drainDelayMs, 0, 0, 600 * SECOND),
    sendStallMs: integer('timeouts.sendStallMs', t.sendStallMs, 30 * SECOND, SECOND, 3600 * SECOND),
  };
  if (timeouts.headersMs > timeouts.requestMs) {
    // Node throws on this at server creation; say it here with the option names.
    throw new TypeError(
      `"timeouts.headersMs" (${timeouts.headersMs}) must not exceed "timeouts.requestMs" (${timeouts.requestMs})`,
    );
  }

  const r = optionalObject('reload', raw.reload, RELOAD_KEYS);
  const reload = {
    watch: bool('reload.watch', r.watch, true),
    sighup: bool('reload.sighup', r.sighup, true),
    debounceMs: integer('reload.debounceMs', r.debounceMs, 200, 0, 60 * SECOND),
    onReload: optionalFunction<[HttpsCertificateInfo]>('reload.onReload', r.onReload),
    onReloadError: optionalFunction<[ShieldError]>('reload.onReloadError', r.onReloadError),
  };

  let redirect: ResolvedHttpsOptions['redirect'];
  if (raw.redirect !== undefined) {
    assertKnownKeys('redirect', raw.redirect, REDIRECT_KEYS);
    const d = raw.redirect;
    const port = integer('redirect.port', d.port, -1, 0, MAX_PORT);
    const targetHost = resolveHost('redirect.targetHost', d.targetHost);
    const out: { port: number; host?: string; targetHost: string; targetPort?: number } = {
      port,
      targetHost,
    };
    if (d.host !== undefined) {
      assertString('redirect.host', d.host);
      out.host = d.host;
    }
    if (d.targetPort !== undefined)
      out.targetPort = integer('redirect.targetPort', d.targetPort, -1, 1, MAX_PORT);
    redirect = out;
  }

  const resolved: ResolvedHttpsOptions = {
    tls,
    mtls,
    headers: { hstsMaxAgeSeconds, hstsIncludeSubDomains, hstsPreload, cacheControl },
    limits,
    timeouts,
    reload,
    redirect,
    nest: resolveNest(raw.nest),
  };
  return deepFreeze(resolved);
}
