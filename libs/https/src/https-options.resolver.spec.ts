import { describe, expect, it } from 'vitest';
import { resolveHttpsOptions } from './https-options.resolver.js';
import { TLS12_CIPHERS } from './tls-policy.js';

const tls = { cert: 'pki/localhost.pem', key: 'pki/localhost-key.pem' };

describe('resolveHttpsOptions', () => {
  it('fills in safe defaults and freezes the result', () => {
    const r = resolveHttpsOptions({ tls });
    expect(r.tls).toEqual({ ...tls, minVersion: 'TLSv1.2', ciphers: TLS12_CIPHERS });
    expect(r.mtls).toBeUndefined();
    expect(r.redirect).toBeUndefined();
    expect(r.headers).toEqual({
      hstsMaxAgeSeconds: 31_536_000,
      hstsIncludeSubDomains: false,
      hstsPreload: false,
      cacheControl: 'no-store',
    });
    expect(r.limits).toEqual({
      maxHeaderBytes: 16_384,
      maxBodyBytes: 1_048_576,
      maxRequestsPerSocket: 0,
      maxConnections: 10_000,
      maxConnectionsPerAddress: 0,
    });
    expect(r.timeouts).toEqual({
      handshakeMs: 10_000,
      headersMs: 10_000,
      requestMs: 30_000,
      keepAliveMs: 5000,
      connectionsCheckingIntervalMs: 250,
      shutdownGracePeriodMs: 10_000,
      drainDelayMs: 0,
      sendStallMs: 30_000,
    });
    expect(r.reload).toMatchObject({ watch: true, sighup: true, debounceMs: 200 });
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.tls)).toBe(true);
    expect(Object.isFrozen(r.timeouts)).toBe(true);
  });

  it('keeps what was given', () => {
    const onReload = (): void => undefined;
    const r = resolveHttpsOptions({
      tls: { ...tls, minVersion: 'TLSv1.3', ciphers: ['ECDHE-ECDSA-AES256-GCM-SHA384'] },
      mtls: { mode: 'optional', ca: { file: 'ca.pem' }, crl: 'ca.crl.pem' },
      headers: {
        hstsMaxAgeSeconds: 63_072_000,
        hstsIncludeSubDomains: true,
        hstsPreload: true,
        cacheControl: 'private',
      },
      limits: { maxHeaderBytes: 8192, maxBodyBytes: 10, maxRequestsPerSocket: 100, maxConnections: 64 },
      timeouts: {
        handshakeMs: 500,
        headersMs: 1000,
        requestMs: 1000,
        keepAliveMs: 100,
        connectionsCheckingIntervalMs: 10,
        shutdownGracePeriodMs: 0,
      },
      reload: { watch: false, sighup: false, debounceMs: 0, onReload },
      redirect: { port: 80, host: '0.0.0.0', targetHost: 'API.Example.com', targetPort: 8443 },
      nest: { logger: false, abortOnError: false },
    });
    expect(r.tls.minVersion).toBe('TLSv1.3');
    expect(r.tls.ciphers).toEqual(['ECDHE-ECDSA-AES256-GCM-SHA384']);
    expect(r.mtls).toEqual({ mode: 'optional', ca: { file: 'ca.pem' }, crl: 'ca.crl.pem' });
    expect(r.redirect).toEqual({
      port: 80,
      host: '0.0.0.0',
      targetHost: 'api.example.com',
      targetPort: 8443,
    });
    expect(r.reload.onReload).toBe(onReload);
    expect(r.nest).toEqual({ logger: false, abortOnError: false });
  });

  it('takes the client CA as PEM text too, copied so later writes to the buffer cannot reach it', () => {
    const pem = Buffer.from('-----BEGIN CERTIFICATE-----\n');
    const r = resolveHttpsOptions({ tls, mtls: { mode: 'required', ca: { pem } } });
    pem.fill(0);
    expect(r.mtls?.ca).toEqual({ pem: Buffer.from('-----BEGIN CERTIFICATE-----\n') });
  });

  it('does not freeze the arrays and objects it was given', () => {
    const ciphers = ['ECDHE-RSA-AES128-GCM-SHA256' as const];
    const cors = { origin: 'https://a.example' };
    resolveHttpsOptions({ tls: { ...tls, ciphers }, nest: { cors } });
    expect(Object.isFrozen(ciphers)).toBe(false);
    expect(Object.isFrozen(cors)).toBe(false);
  });

  it.each<[string, unknown, RegExp]>([
    ['no options', undefined, /"options" must be an object/],
    ['no tls', {}, /"tls" must be an object/],
    ['a missing key path', { tls: { cert: 'a.pem' } }, /"tls\.key" must be a non-empty string/],
    ['an empty cert path', { tls: { cert: '', key: 'k' } }, /"tls\.cert"/],
    ['an unknown top-level key', { tls, http: true }, /"options" has an unknown option "http"/],
    ['insecure: true', { tls, insecure: true }, /unknown option "insecure"/],
    [
      'rejectUnauthorized in tls',
      { tls: { ...tls, rejectUnauthorized: false } },
      /"tls" has an unknown option "rejectUnauthorized"/,
    ],
    [
      'rejectUnauthorized in mtls',
      { tls, mtls: { mode: 'required', ca: { file: 'ca.pem' }, rejectUnauthorized: false } },
      /"mtls" has an unknown option "rejectUnauthorized"/,
    ],
    ['a typo', { tls: { ...tls, minVersoin: 'TLSv1.3' } }, /unknown option "minVersoin"/],
    ['no connection at all', { tls, limits: { maxConnections: 0 } }, /"limits\.maxConnections"/],
    ['unbounded connections', { tls, limits: { maxConnections: Infinity } }, /"limits\.maxConnections"/],
    ['a fractional cap', { tls, limits: { maxConnections: 1.5 } }, /"limits\.maxConnections"/],
    [
      'a negative per-address cap',
      { tls, limits: { maxConnectionsPerAddress: -1 } },
      /maxConnectionsPerAddress/,
    ],
    ['no send-stall bound', { tls, timeouts: { sendStallMs: 0 } }, /"timeouts\.sendStallMs"/],
    ['a negative drain delay', { tls, timeouts: { drainDelayMs: -1 } }, /"timeouts\.drainDelayMs"/],
    ['a drain delay past 10 min', { tls, timeouts: { drainDelayMs: 600_001 } }, /"timeouts\.drainDelayMs"/],
    [
      'TLSv1.1',
      { tls: { ...tls, minVersion: 'TLSv1.1' } },
      /"tls\.minVersion" must be "TLSv1\.2" or "TLSv1\.3", got "TLSv1\.1": TLS 1\.1 is deprecated \(RFC 8996\)/,
    ],
    ['TLSv1', { tls: { ...tls, minVersion: 'TLSv1' } }, /RFC 8996/],
    ['SSLv3', { tls: { ...tls, minVersion: 'SSLv3' } }, /POODLE/],
    ['a made-up version', { tls: { ...tls, minVersion: 'TLSv2' } }, /"tls\.minVersion" must be one of/],
    [
      'a cipher string',
      { tls: { ...tls, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' } },
      /"tls\.ciphers" must be a non-empty array/,
    ],
    [
      'a CBC suite',
      { tls: { ...tls, ciphers: ['ECDHE-RSA-AES128-SHA256'] } },
      /"tls\.ciphers\[0\]" must be one of/,
    ],
    [
      'a repeated suite',
      { tls: { ...tls, ciphers: ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'] } },
      /"tls\.ciphers\[1\]" repeats/,
    ],
    [
      'an mtls mode "off"',
      { tls, mtls: { mode: 'off', ca: { file: 'ca.pem' } } },
      /"mtls\.mode" must be one of "required", "optional"/,
    ],
    ['mtls without ca', { tls, mtls: { mode: 'required' } }, /"mtls\.ca"/],
    [
      'mtls.ca as a bare string (a path in some packages, PEM text in others)',
      { tls, mtls: { mode: 'required', ca: 'ca.pem' } },
      /"mtls\.ca" must be \{ file: "<path to a PEM file>" \} or \{ pem: "<PEM text>" \}, got a bare string/,
    ],
    [
      'mtls.ca with both file and pem',
      { tls, mtls: { mode: 'required', ca: { file: 'ca.pem', pem: 'x' } } },
      /"mtls\.ca" must have exactly one of "file" or "pem"/,
    ],
    [
      'mtls.ca.file empty',
      { tls, mtls: { mode: 'required', ca: { file: '' } } },
      /"mtls\.ca\.file" must be a non-empty path/,
    ],
    [
      'mtls.crl with a CA given as PEM text',
      { tls, mtls: { mode: 'required', ca: { pem: 'x' }, crl: 'ca.crl.pem' } },
      /"mtls\.crl" needs "mtls\.ca" as \{ file \}/,
    ],
    [
      'HSTS of zero',
      { tls, headers: { hstsMaxAgeSeconds: 0 } },
      /"headers\.hstsMaxAgeSeconds" must be an integer from 86400/,
    ],
    [
      'preload without includeSubDomains',
      { tls, headers: { hstsPreload: true } },
      /"headers\.hstsPreload" needs/,
    ],
    [
      'a Cache-Control with a line break',
      { tls, headers: { cacheControl: 'no-store\r\nX-Evil: 1' } },
      /"headers\.cacheControl"/,
    ],
    [
      'a header limit of 1 MiB',
      { tls, limits: { maxHeaderBytes: 1_048_576 } },
      /"limits\.maxHeaderBytes" must be an integer from 1024 to 65536/,
    ],
    ['a body limit of zero', { tls, limits: { maxBodyBytes: 0 } }, /"limits\.maxBodyBytes"/],
    [
      'a zero headers timeout (Node: none)',
      { tls, timeouts: { headersMs: 0 } },
      /"timeouts\.headersMs" must be an integer from 100/,
    ],
    ['a fractional timeout', { tls, timeouts: { requestMs: 1000.5 } }, /"timeouts\.requestMs"/],
    ['a string timeout', { tls, timeouts: { handshakeMs: '10s' } }, /"timeouts\.handshakeMs"/],
    [
      'headers timeout above request timeout',
      { tls, timeouts: { headersMs: 5000, requestMs: 1000 } },
      /"timeouts\.headersMs" \(5000\) must not exceed "timeouts\.requestMs" \(1000\)/,
    ],
    [
      'a 30 s checking interval',
      { tls, timeouts: { connectionsCheckingIntervalMs: 30_000 } },
      /"timeouts\.connectionsCheckingIntervalMs"/,
    ],
    [
      'a non-function onReloadError',
      { tls, reload: { onReloadError: 'log' } },
      /"reload\.onReloadError" must be a function/,
    ],
    ['a redirect without targetHost', { tls, redirect: { port: 80 } }, /"redirect\.targetHost"/],
    [
      'a redirect target with a path',
      { tls, redirect: { port: 80, targetHost: 'a.example/x' } },
      /"redirect\.targetHost" must be a host name/,
    ],
    [
      'a redirect target with a port',
      { tls, redirect: { port: 80, targetHost: 'a.example:8443' } },
      /"redirect\.targetHost"/,
    ],
    [
      'a redirect port out of range',
      { tls, redirect: { port: 70_000, targetHost: 'a.example' } },
      /"redirect\.port"/,
    ],
    [
      'nest.httpsOptions',
      { tls, nest: { httpsOptions: {} } },
      /"nest\.httpsOptions" is set by the HTTPS bootstrap/,
    ],
    [
      'nest.bodyParser not a boolean',
      { tls, nest: { bodyParser: 'yes' } },
      /"nest\.bodyParser" must be a boolean/,
    ],
    ['an unknown nest option', { tls, nest: { snapshot: true } }, /"nest" has an unknown option "snapshot"/],
  ])('refuses %s with a TypeError naming the field', (_name, raw, message) => {
    expect(() => resolveHttpsOptions(raw)).toThrow(TypeError);
    expect(() => resolveHttpsOptions(raw)).toThrow(message);
  });
});
