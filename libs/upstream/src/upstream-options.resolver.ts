import { isIP } from 'node:net';
import {
  assertBoolean,
  assertCaSource,
  copyCaSource,
  type CaSource,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  assertStringArray,
  deepFreeze,
  describeValue,
  isShieldError,
  parseHttpsUrl,
  readBoundedFile,
} from '@inference-shield/core/internal';
import {
  DEFAULT_ASSERTION_HEADER,
  DEFAULT_PASS_THROUGH_STATUSES,
  DEFAULT_PROXY_REQUEST_HEADERS,
  DEFAULT_PROXY_RESPONSE_HEADERS,
  HEADER_NAME,
  HOP_BY_HOP_HEADERS,
  NEVER_FORWARDED_REQUEST_HEADERS,
  NEVER_RETURNED_RESPONSE_HEADERS,
  UPSTREAM_NAME,
} from './upstream.constants.js';
import type {
  ResolvedCallerAssertionOptions,
  ResolvedUpstreamModuleOptions,
  ResolvedUpstreamOptions,
  ResolvedUpstreamProxyOptions,
  UpstreamModuleOptions,
  UpstreamOptions,
} from './upstream-options.interface.js';
import { resolveUpstreamCredential } from './credentials/credential-options.resolver.js';

const UPSTREAM_KEYS = [
  'baseUrl',
  'ca',
  'clientCertificate',
  'clientCertificateSource',
  'servername',
  'minTlsVersion',
  'pins',
  'timeouts',
  'pool',
  'egressProxy',
  'apiKey',
  'apiKeyHeader',
  'credential',
  'proxy',
] as const;

/** Headers the client sets itself: an API key cannot go there. */
const RESERVED_CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'cookie',
  'content-length',
  'content-type',
  'expect',
]);

/** An API key file is a few dozen bytes; refuse to read a huge or endless one. */
const MAX_SECRET_FILE_BYTES = 8 * 1024;
const MAX_BODY_LIMIT = 64 * 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Parse `UpstreamModule` options once, at start-up: every field checked (a `TypeError` naming it),
 * unknown keys refused, defaults filled in, API keys read from their env var or file, the result
 * frozen. Nothing on the request path looks at raw options again.
 */
export function resolveUpstreamModuleOptions(
  raw: UpstreamModuleOptions,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedUpstreamModuleOptions {
  assertKnownKeys('UpstreamModule options', raw, ['upstreams', 'callerAssertion']);
  assertObject('upstreams', raw.upstreams);
  const names = Object.keys(raw.upstreams);
  if (names.length === 0) throw new TypeError('"upstreams" must name at least one upstream');
  const upstreams: Record<string, ResolvedUpstreamOptions> = {};
  for (const name of names) {
    upstreams[name] = resolveUpstreamOptions(name, raw.upstreams[name], env);
  }
  const out: {
    upstreams: Record<string, ResolvedUpstreamOptions>;
    callerAssertion?: ResolvedCallerAssertionOptions;
  } = { upstreams };
  if (raw.callerAssertion !== undefined) out.callerAssertion = resolveCallerAssertion(raw.callerAssertion);
  const assertionHeader = out.callerAssertion?.header;
  for (const u of Object.values(upstreams)) {
    // A caller must never be able to send its own "assertion" through the proxy.
    if (assertionHeader !== undefined && u.proxy.requestHeaders.has(assertionHeader)) {
      throw new TypeError(
        `"upstreams.${u.name}.proxy.requestHeaders" must not list the assertion header "${assertionHeader}"`,
      );
    }
  }
  const needsAssertion = Object.values(upstreams).filter((u) => u.proxy.assertCaller);
  if (needsAssertion.length > 0 && out.callerAssertion === undefined) {
    throw new TypeError(
      `"upstreams.${needsAssertion[0]?.name}.proxy.assertCaller" needs "callerAssertion" (the signing key and the caller resolver)`,
    );
  }
  return deepFreeze(out);
}

/** Parse one upstream's options (see {@link resolveUpstreamModuleOptions}). */
export function resolveUpstreamOptions(
  name: string,
  raw: unknown,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedUpstreamOptions {
  if (typeof name !== 'string' || !UPSTREAM_NAME.test(name)) {
    throw new TypeError(
      `upstream name must match ${UPSTREAM_NAME} (letters, digits, "_" and "-"), got ${describeValue(name)}`,
    );
  }
  const f = (field: string): string => `upstreams.${name}.${field}`;
  assertKnownKeys(`upstreams.${name}`, raw, UPSTREAM_KEYS);
  const o = raw as unknown as UpstreamOptions;

  // https only, whatever the host: there is no plaintext exception for "internal" upstreams.
  const url = parseHttpsUrl(f('baseUrl'), o.baseUrl);
  if (url.search)
    throw new TypeError(`"${f('baseUrl')}" must not have a query, got ${describeValue(o.baseUrl)}`);
  const pathPrefix = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  const hostname = url.hostname.replace(/^\[|\]$/g, '');

  const out: {
    -readonly [K in keyof ResolvedUpstreamOptions]: ResolvedUpstreamOptions[K];
  } = {
    name,
    baseUrl: `${url.origin}${pathPrefix}`,
    origin: url.origin,
    pathPrefix,
    minTlsVersion: 'TLSv1.2',
    pins: [],
    timeouts: resolveTimeouts(f('timeouts'), o.timeouts),
    pool: resolvePool(f('pool'), o.pool),
    proxy: resolveProxy(f('proxy'), o.proxy),
  };

  if (o.ca !== undefined) {
    assertCaSource(f('ca'), o.ca);
    out.ca = copyCaSource(o.ca);
  }
  if (o.clientCertificate !== undefined) {
    const c = o.clientCertificate;
    assertKnownKeys(f('clientCertificate'), c, ['cert', 'key', 'watch']);
    assertString(f('clientCertificate.cert'), c.cert);
    assertString(f('clientCertificate.key'), c.key);
    if (c.watch !== undefined) assertBoolean(f('clientCertificate.watch'), c.watch);
    out.clientCertificate = { cert: c.cert, key: c.key, watch: c.watch ?? true };
  }
  if (o.clientCertificateSource !== undefined) {
    const s = o.clientCertificateSource as Partial<Record<'current' | 'subscribe', unknown>> | null;
    if (
      typeof s !== 'object' ||
      s === null ||
      typeof s.current !== 'function' ||
      typeof s.subscribe !== 'function'
    ) {
      throw new TypeError(
        `"${f('clientCertificateSource')}" must be an object with current() and subscribe()`,
      );
    }
    if (o.clientCertificate !== undefined) {
      throw new TypeError(
        `"${f('clientCertificateSource')}" replaces "${f('clientCertificate')}": give one or the other`,
      );
    }
    out.clientCertificateSource = o.clientCertificateSource;
  }
  if (o.servername !== undefined) {
    assertString(f('servername'), o.servername);
    if (isIP(o.servername) !== 0 || !/^[A-Za-z0-9.-]{1,253}$/.test(o.servername)) {
      // RFC 6066 §3: SNI carries a DNS host name, never an IP address literal.
      throw new TypeError(`"${f('servername')}" must be a DNS name, got ${describeValue(o.servername)}`);
    }
    out.servername = o.servername.toLowerCase();
  } else if (isIP(hostname) === 0) {
    out.servername = hostname.toLowerCase();
  }
  if (o.minTlsVersion !== undefined) {
    assertOneOf(f('minTlsVersion'), o.minTlsVersion, ['TLSv1.2', 'TLSv1.3'] as const);
    out.minTlsVersion = o.minTlsVersion;
  }
  if (o.pins !== undefined) out.pins = resolvePins(f('pins'), o.pins);
  if (o.egressProxy !== undefined) {
    const p = o.egressProxy;
    assertKnownKeys(f('egressProxy'), p, ['url', 'ca']);
    assertString(f('egressProxy.url'), p.url);
    let proxyUrl: URL;
    try {
      proxyUrl = new URL(p.url);
    } catch {
      throw new TypeError(`"${f('egressProxy.url')}" must be an absolute URL, got ${describeValue(p.url)}`);
    }
    if (proxyUrl.protocol !== 'http:' && proxyUrl.protocol !== 'https:') {
      throw new TypeError(`"${f('egressProxy.url')}" must be an http: or https: URL (HTTP CONNECT)`);
    }
    // Credentials in a URL end up in logs and error messages.
    if (proxyUrl.username || proxyUrl.password) {
      throw new TypeError(`"${f('egressProxy.url')}" must not carry credentials in the URL`);
    }
    if (proxyUrl.pathname !== '/' || proxyUrl.search || proxyUrl.hash) {
      throw new TypeError(`"${f('egressProxy.url')}" must be an origin (no path, query or fragment)`);
    }
    const resolved: { url: string; ca?: CaSource } = { url: proxyUrl.origin };
    if (p.ca !== undefined) {
      assertCaSource(f('egressProxy.ca'), p.ca);
      if (proxyUrl.protocol !== 'https:')
        throw new TypeError(`"${f('egressProxy.ca')}" is only used with an https: proxy`);
      resolved.ca = copyCaSource(p.ca);
    }
    out.egressProxy = resolved;
  }
  if (o.apiKeyHeader !== undefined && o.apiKey === undefined) {
    throw new TypeError(`"${f('apiKeyHeader')}" needs "${f('apiKey')}"`);
  }
  if (o.apiKey !== undefined) {
    const header = (o.apiKeyHeader ?? 'authorization') as unknown;
    assertString(f('apiKeyHeader'), header);
    const lower = header.toLowerCase();
    if (
      !HEADER_NAME.test(header) ||
      HOP_BY_HOP_HEADERS.has(lower) ||
      RESERVED_CREDENTIAL_HEADERS.has(lower)
    ) {
      throw new TypeError(
        `"${f('apiKeyHeader')}" must be a plain end-to-end header name, got ${describeValue(header)}`,
      );
    }
    const key = readSecret(f('apiKey'), o.apiKey, env);
    out.credential = { header: lower, value: lower === 'authorization' ? `Bearer ${key}` : key };
  }
  if (o.credential !== undefined) {
    // One credential per upstream: a static key beside a token would make which one is sent a guess.
    if (o.apiKey !== undefined) {
      throw new TypeError(`"${f('credential')}" and "${f('apiKey')}" are exclusive: configure one`);
    }
    out.tokenCredential = resolveUpstreamCredential(
      f('credential'),
      o.credential,
      out.clientCertificate !== undefined || out.clientCertificateSource !== undefined,
      out.origin,
      env,
    );
  }
  return deepFreeze(out);
}

function resolveTimeouts(field: string, raw: unknown): ResolvedUpstreamOptions['timeouts'] {
  const t = raw ?? {};
  assertKnownKeys(field, t, ['connectMs', 'headersMs', 'bodyIdleMs']);
  const connectMs = t.connectMs ?? 5_000;
  const headersMs = t.headersMs ?? 120_000;
  const bodyIdleMs = t.bodyIdleMs ?? 60_000;
  assertInteger(`${field}.connectMs`, connectMs, 1, 120_000);
  assertInteger(`${field}.headersMs`, headersMs, 1, DAY_MS);
  assertInteger(`${field}.bodyIdleMs`, bodyIdleMs, 1, DAY_MS);
  return { connectMs, headersMs, bodyIdleMs };
}

function resolvePool(field: string, raw: unknown): ResolvedUpstreamOptions['pool'] {
  const p = raw ?? {};
  assertKnownKeys(field, p, ['connections', 'keepAliveMs']);
  const connections = p.connections ?? 16;
  const keepAliveMs = p.keepAliveMs ?? 30_000;
  assertInteger(`${field}.connections`, connections, 1, 1024);
  assertInteger(`${field}.keepAliveMs`, keepAliveMs, 1, 10 * 60_000);
  return { connections, keepAliveMs };
}

function resolveProxy(field: string, raw: unknown): ResolvedUpstreamProxyOptions {
  const p = raw ?? {};
  assertKnownKeys(field, p, [
    'requestHeaders',
    'responseHeaders',
    'maxRequestBodyBytes',
    'passThroughStatuses',
    'assertCaller',
  ]);
  const requestHeaders = new Set(DEFAULT_PROXY_REQUEST_HEADERS);
  if (p.requestHeaders !== undefined) {
    for (const h of headerList(`${field}.requestHeaders`, p.requestHeaders)) {
      // Credentials, cookies and hop-by-hop fields cannot be allowed through: the upstream gets its
      // own credentials, and a caller must not be able to choose them.
      if (NEVER_FORWARDED_REQUEST_HEADERS.has(h)) {
        throw new TypeError(`"${field}.requestHeaders" must not list "${h}": it is never forwarded`);
      }
      requestHeaders.add(h);
    }
  }
  const responseHeaders = new Set(DEFAULT_PROXY_RESPONSE_HEADERS);
  if (p.responseHeaders !== undefined) {
    for (const h of headerList(`${field}.responseHeaders`, p.responseHeaders)) {
      if (NEVER_RETURNED_RESPONSE_HEADERS.has(h)) {
        throw new TypeError(`"${field}.responseHeaders" must not list "${h}": it is never returned`);
      }
      responseHeaders.add(h);
    }
  }
  const maxRequestBodyBytes = p.maxRequestBodyBytes ?? 1024 * 1024;
  assertInteger(`${field}.maxRequestBodyBytes`, maxRequestBodyBytes, 0, MAX_BODY_LIMIT);
  let passThrough = DEFAULT_PASS_THROUGH_STATUSES;
  if (p.passThroughStatuses !== undefined) {
    const list = p.passThroughStatuses;
    if (!Array.isArray(list) || list.some((s) => !Number.isInteger(s) || s < 400 || s > 499)) {
      throw new TypeError(
        `"${field}.passThroughStatuses" must be an array of 4xx statuses, got ${describeValue(list)}`,
      );
    }
    passThrough = list as number[];
  }
  const assertCaller = p.assertCaller ?? false;
  assertBoolean(`${field}.assertCaller`, assertCaller);
  return {
    requestHeaders,
    responseHeaders,
    maxRequestBodyBytes,
    passThroughStatuses: new Set(passThrough),
    assertCaller,
  };
}

function headerList(field: string, value: unknown): string[] {
  assertStringArray(field, value);
  return value.map((h) => {
    if (!HEADER_NAME.test(h))
      throw new TypeError(`"${field}" holds an invalid header name ${describeValue(h)}`);
    return h.toLowerCase();
  });
}

function resolvePins(field: string, value: unknown): string[] {
  assertStringArray(field, value, { nonEmpty: true });
  return value.map((pin, i) => {
    const b64 = pin.startsWith('sha256/') ? pin.slice('sha256/'.length) : pin;
    const bytes = /^[A-Za-z0-9+/]{43}=$/.test(b64) ? Buffer.from(b64, 'base64') : undefined;
    if (bytes?.length !== 32) {
      throw new TypeError(
        `"${field}[${i}]" must be a base64 SHA-256 of a public key (44 characters), got ${describeValue(pin)}`,
      );
    }
    return bytes.toString('base64');
  });
}

function resolveCallerAssertion(raw: unknown): ResolvedCallerAssertionOptions {
  assertKnownKeys('callerAssertion', raw, ['issuer', 'caller', 'privateKeyFile', 'ttlSeconds', 'header']);
  assertString('callerAssertion.issuer', raw.issuer);
  if (typeof raw.caller !== 'function') {
    throw new TypeError(
      `"callerAssertion.caller" must be a function (req) => caller, got ${describeValue(raw.caller)}`,
    );
  }
  const ttlSeconds = raw.ttlSeconds ?? 30;
  // A bearer assertion is replayable until it expires: keep the window short (at most a minute).
  assertInteger('callerAssertion.ttlSeconds', ttlSeconds, 1, 60);
  const header = (raw.header ?? DEFAULT_ASSERTION_HEADER) as unknown;
  assertString('callerAssertion.header', header);
  if (!HEADER_NAME.test(header) || NEVER_FORWARDED_REQUEST_HEADERS.has(header.toLowerCase())) {
    throw new TypeError(`"callerAssertion.header" must be a plain header name, got ${describeValue(header)}`);
  }
  const out: { -readonly [K in keyof ResolvedCallerAssertionOptions]: ResolvedCallerAssertionOptions[K] } = {
    issuer: raw.issuer,
    caller: raw.caller as ResolvedCallerAssertionOptions['caller'],
    ttlSeconds,
    header: header.toLowerCase(),
  };
  if (raw.privateKeyFile !== undefined) {
    assertString('callerAssertion.privateKeyFile', raw.privateKeyFile);
    out.privateKeyFile = raw.privateKeyFile;
  }
  return out;
}

/**
 * Read an API key from its env var or file. Error messages name the variable or the file, never
 * the value; the value must be a single header-safe line (no CR/LF: header injection).
 */
function readSecret(field: string, source: unknown, env: NodeJS.ProcessEnv): string {
  assertObject(field, source);
  let value: string;
  let where: string;
  if ('env' in source && !('file' in source)) {
    assertKnownKeys(field, source, ['env']);
    assertString(`${field}.env`, source.env);
    where = `environment variable ${source.env}`;
    const v = env[source.env];
    if (v === undefined || v.trim() === '') throw new TypeError(`"${field}": ${where} is not set or empty`);
    value = v.trim();
  } else if ('file' in source && !('env' in source)) {
    assertKnownKeys(field, source, ['file']);
    assertString(`${field}.file`, source.file);
    where = `file ${source.file}`;
    value = readSecretFile(field, source.file).trim();
    if (value === '') throw new TypeError(`"${field}": ${where} is empty`);
  } else {
    throw new TypeError(`"${field}" must be { env: "NAME" } or { file: "/path" }`);
  }
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new TypeError(`"${field}": the key in ${where} must be one line of visible ASCII characters`);
  }
  return value;
}

/**
 * An API key file is configuration, not a certificate: a file that cannot be read is a `TypeError`
 * naming the field, like every other bad option, not core's `ERR_CERT_FILE_UNREADABLE`. The message
 * is core's (role, path and reason), never the content.
 */
function readSecretFile(field: string, path: string): string {
  try {
    return readBoundedFile(path, 'API key', MAX_SECRET_FILE_BYTES).toString('utf8');
  } catch (err) {
    if (!isShieldError(err)) throw err;
    throw new TypeError(`"${field}": ${err.message}`, { cause: err });
  }
}
