import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveUpstreamModuleOptions, resolveUpstreamOptions } from './upstream-options.resolver.js';

const dir = mkdtempSync(join(tmpdir(), 'upstream-opts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const base = 'https://llm.example/v1';
const pin = Buffer.alloc(32, 7).toString('base64');
const fifo = (): string => {
  const path = join(dir, 'key-fifo');
  execFileSync('mkfifo', [path]);
  return path;
};
const bigKeyFile = (): string => {
  const path = join(dir, 'big-key');
  writeFileSync(path, `sk-${'x'.repeat(8 * 1024 - 3)}\n`);
  return path;
};

describe('resolveUpstreamOptions', () => {
  it('fills defaults and freezes', () => {
    const r = resolveUpstreamOptions('llm', { baseUrl: base });
    expect(r).toMatchObject({
      name: 'llm',
      baseUrl: 'https://llm.example/v1/',
      origin: 'https://llm.example',
      pathPrefix: '/v1/',
      servername: 'llm.example',
      minTlsVersion: 'TLSv1.2',
      pins: [],
      timeouts: { connectMs: 5000, headersMs: 120000, bodyIdleMs: 60000 },
      pool: { connections: 16, keepAliveMs: 30000 },
    });
    expect(r.credential).toBeUndefined();
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.timeouts)).toBe(true);
  });

  it('an IP literal base URL gets no SNI (RFC 6066 §3)', () => {
    expect(resolveUpstreamOptions('llm', { baseUrl: 'https://127.0.0.1:8443/' }).servername).toBeUndefined();
    const v6 = resolveUpstreamOptions('llm', { baseUrl: 'https://[::1]:8443/' });
    expect(v6.servername).toBeUndefined();
    expect(v6.origin).toBe('https://[::1]:8443');
  });

  it('reads the API key from env or file, as a Bearer by default', () => {
    const env = { LLM_KEY: ' sk-abc123 ' };
    expect(
      resolveUpstreamOptions('llm', { baseUrl: base, apiKey: { env: 'LLM_KEY' } }, env).credential,
    ).toEqual({
      header: 'authorization',
      value: 'Bearer sk-abc123',
    });
    const file = join(dir, 'key');
    writeFileSync(file, 'sk-from-file\n');
    expect(
      resolveUpstreamOptions('llm', { baseUrl: base, apiKey: { file }, apiKeyHeader: 'X-Api-Key' })
        .credential,
    ).toEqual({
      header: 'x-api-key',
      value: 'sk-from-file',
    });
  });

  it('normalizes pins', () => {
    expect(resolveUpstreamOptions('llm', { baseUrl: base, pins: [`sha256/${pin}`, pin] }).pins).toEqual([
      pin,
      pin,
    ]);
  });

  it.each([
    ['name', 'bad name', { baseUrl: base }, /upstream name/],
    ['http', 'llm', { baseUrl: 'http://llm.example/v1' }, /"upstreams\.llm\.baseUrl" must be an https: URL/],
    ['no baseUrl', 'llm', {}, /"upstreams\.llm\.baseUrl"/],
    ['query', 'llm', { baseUrl: `${base}?x=1` }, /must not have a query/],
    ['credentials', 'llm', { baseUrl: 'https://u:p@llm.example/' }, /credentials/],
    ['unknown key', 'llm', { baseUrl: base, insecure: true }, /unknown option "insecure"/],
    [
      'rejectUnauthorized',
      'llm',
      { baseUrl: base, rejectUnauthorized: false },
      /unknown option "rejectUnauthorized"/,
    ],
    ['TLS 1.0', 'llm', { baseUrl: base, minTlsVersion: 'TLSv1' }, /minTlsVersion/],
    ['servername IP', 'llm', { baseUrl: base, servername: '10.0.0.1' }, /servername/],
    ['short pin', 'llm', { baseUrl: base, pins: ['abc='] }, /pins\[0\]/],
    ['empty pins', 'llm', { baseUrl: base, pins: [] }, /pins/],
    ['connect timeout 0', 'llm', { baseUrl: base, timeouts: { connectMs: 0 } }, /timeouts\.connectMs/],
    ['timeout unknown key', 'llm', { baseUrl: base, timeouts: { totalMs: 1 } }, /unknown option "totalMs"/],
    ['pool size', 'llm', { baseUrl: base, pool: { connections: 0 } }, /pool\.connections/],
    [
      'cert without key',
      'llm',
      { baseUrl: base, clientCertificate: { cert: 'c.pem' } },
      /clientCertificate\.key/,
    ],
    [
      'proxy with path',
      'llm',
      { baseUrl: base, egressProxy: { url: 'http://proxy:3128/x' } },
      /egressProxy\.url/,
    ],
    [
      'proxy credentials',
      'llm',
      { baseUrl: base, egressProxy: { url: 'http://u:p@proxy:3128' } },
      /credentials/,
    ],
    ['proxy socks', 'llm', { baseUrl: base, egressProxy: { url: 'socks5://proxy:1080' } }, /http: or https:/],
    [
      'key env and file',
      'llm',
      { baseUrl: base, apiKey: { env: 'A', file: 'b' } },
      /\{ env: "NAME" \} or \{ file: "\/path" \}/,
    ],
    [
      'key env missing',
      'llm',
      { baseUrl: base, apiKey: { env: 'SHIELD_NOPE_NOT_SET' } },
      /SHIELD_NOPE_NOT_SET is not set/,
    ],
    [
      'key file missing',
      'llm',
      { baseUrl: base, apiKey: { file: '/nonexistent/key' } },
      /\/nonexistent\/key is unreadable/,
    ],
    [
      'key header alone',
      'llm',
      { baseUrl: base, apiKeyHeader: 'x-api-key' },
      /needs "upstreams\.llm\.apiKey"/,
    ],
    [
      'key header hop-by-hop',
      'llm',
      { baseUrl: base, apiKey: { env: 'K' }, apiKeyHeader: 'connection' },
      /apiKeyHeader/,
    ],
    [
      'forward Authorization',
      'llm',
      { baseUrl: base, proxy: { requestHeaders: ['authorization'] } },
      /must not list "authorization"/,
    ],
    [
      'forward Cookie',
      'llm',
      { baseUrl: base, proxy: { requestHeaders: ['Cookie'] } },
      /must not list "cookie"/,
    ],
    [
      'return Set-Cookie',
      'llm',
      { baseUrl: base, proxy: { responseHeaders: ['set-cookie'] } },
      /must not list "set-cookie"/,
    ],
    ['pass through 500', 'llm', { baseUrl: base, proxy: { passThroughStatuses: [500] } }, /4xx/],
    ['body limit', 'llm', { baseUrl: base, proxy: { maxRequestBodyBytes: 1e12 } }, /maxRequestBodyBytes/],
  ])('%s → TypeError naming the field', (_case, name, raw, message) => {
    expect(() => resolveUpstreamOptions(name, raw, { K: 'k' })).toThrow(message);
    expect(() => resolveUpstreamOptions(name, raw, { K: 'k' })).toThrow(TypeError);
  });

  it.each([
    ['a directory', () => dir, /API key file .* is not a regular file/],
    ['a FIFO (would block a plain read)', () => fifo(), /API key file .* is not a regular file/],
    ['over 8 KiB', () => bigKeyFile(), /API key file .* is 8193 bytes, more than the 8192 allowed/],
  ])('a key file that is %s is a TypeError naming the field and the file', (_case, path, reason) => {
    const file = path();
    let err: unknown;
    try {
      resolveUpstreamOptions('llm', { baseUrl: base, apiKey: { file } });
    } catch (e) {
      err = e;
    }
    // A configuration mistake like any other option, not a certificate error code.
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/^"upstreams\.llm\.apiKey": /);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(reason);
    expect((err as Error).message).not.toContain('sk-');
  });

  it('a key with a line break is refused without quoting it', () => {
    const file = join(dir, 'two-lines');
    writeFileSync(file, 'sk-first\nsk-second\n');
    let message = '';
    try {
      resolveUpstreamOptions('llm', { baseUrl: base, apiKey: { file } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(file);
    expect(message).not.toContain('sk-first');
  });
});

describe('resolveUpstreamModuleOptions', () => {
  const caller = () => undefined;

  it.each([
    ['no upstreams', { upstreams: {} }, /at least one upstream/],
    [
      'unknown top-level key',
      { upstreams: { a: { baseUrl: base } }, verify: false },
      /unknown option "verify"/,
    ],
    [
      'assertCaller without signer',
      { upstreams: { a: { baseUrl: base, proxy: { assertCaller: true } } } },
      /needs "callerAssertion"/,
    ],
    [
      'ttl over 60 s',
      { upstreams: { a: { baseUrl: base } }, callerAssertion: { issuer: 'svc', caller, ttlSeconds: 300 } },
      /ttlSeconds/,
    ],
    [
      'caller not a function',
      { upstreams: { a: { baseUrl: base } }, callerAssertion: { issuer: 'svc', caller: 'req.user' } },
      /caller/,
    ],
    [
      'caller may not forward the assertion header',
      {
        upstreams: { a: { baseUrl: base, proxy: { requestHeaders: ['x-shield-caller-assertion'] } } },
        callerAssertion: { issuer: 'svc', caller },
      },
      /must not list the assertion header/,
    ],
  ])('%s', (_case, raw, message) => {
    expect(() => resolveUpstreamModuleOptions(raw as never)).toThrow(message);
  });

  it('accepts a complete configuration', () => {
    const r = resolveUpstreamModuleOptions({
      upstreams: { a: { baseUrl: base, proxy: { assertCaller: true } } },
      callerAssertion: { issuer: 'spiffe://shield.local/svc', caller },
    });
    expect(r.callerAssertion).toMatchObject({ ttlSeconds: 30, header: 'x-shield-caller-assertion' });
    expect(r.upstreams.a?.proxy.assertCaller).toBe(true);
  });
});
