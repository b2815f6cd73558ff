/**
 * docs/threat-model.md, "TLS, outbound": each row against a real bad upstream on loopback. Where the row says
 * "no request bytes sent", the bad upstream records what it received after the handshake and the
 * test asserts it got nothing (and, as a control, that the same server records a good client).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createUpstreamRegistry,
  spkiPin,
  type UpstreamOptions,
  type UpstreamRegistry,
} from '@inference-shield/upstream';
import { X509Certificate } from 'node:crypto';
import {
  closeServer,
  codeOf,
  connectProxy,
  deferred,
  httpsServer,
  listen,
  opensslTls10Server,
  recordingTlsServer,
  testPki,
  type RecordingServer,
} from './upstream-fixtures.js';

let pki: Awaited<ReturnType<typeof testPki>>;
const registries: UpstreamRegistry[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pki = await testPki();
});

afterAll(async () => {
  await Promise.all(registries.map((r) => r.close()));
  for (const close of closers) await close();
  pki?.cleanup();
});

/** One upstream named `t` on `https://<host>:<port>/v1`, trusting the test CA, with our client cert. */
async function client(port: number, extra: Partial<UpstreamOptions> = {}, host = 'localhost') {
  const registry = await createUpstreamRegistry({
    upstreams: {
      t: {
        baseUrl: `https://${host}:${port}/v1`,
        ca: { file: pki.ca.cert },
        clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
        timeouts: { connectMs: 3000, headersMs: 3000, bodyIdleMs: 3000 },
        ...extra,
      },
    },
  });
  registries.push(registry);
  return registry.client('t');
}

async function recording(
  cert: { certPem: string; keyPem: string },
  respond = false,
): Promise<RecordingServer> {
  const server = await recordingTlsServer(
    { cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' },
    respond,
  );
  closers.push(() => server.close());
  return server;
}

describe('upstream certificate refused, no request bytes sent', () => {
  it('control: a good upstream records the request', async () => {
    const server = await recording(pki.server, true);
    const c = await client(server.port);
    const res = await c.fetch(`${c.baseUrl}chat/completions`, {
      method: 'POST',
      body: '{"secret":"prompt"}',
    });
    expect(res.status).toBe(200);
    expect(server.text()).toContain('POST /v1/chat/completions');
  });

  it.each([
    ['expired', () => pki.expired.server, 'ERR_UPSTREAM_CERT_EXPIRED'],
    ['not yet valid', () => pki.notYetValid.server, 'ERR_UPSTREAM_CERT_EXPIRED'],
    ['from an untrusted CA', () => pki.otherCa.server, 'ERR_UPSTREAM_CERT_UNTRUSTED'],
    ['for another host', () => pki.wrongHost.server, 'ERR_UPSTREAM_HOSTNAME_MISMATCH'],
    [
      'self-signed (the CA certificate itself as a leaf)',
      () => ({ certPem: pki.ca.certPem, keyPem: pki.ca.keyPem }),
      'ERR_UPSTREAM_CERT_UNTRUSTED',
    ],
    ['without serverAuth', () => pki.wrongEku.server, 'ERR_UPSTREAM_CERT_UNTRUSTED'],
  ])('%s → %s', async (_name, cert, code) => {
    const server = await recording(cert());
    const c = await client(server.port);
    expect(
      await codeOf(c.fetch(`${c.baseUrl}chat/completions`, { method: 'POST', body: '{"secret":"prompt"}' })),
    ).toBe(code);
    expect(await codeOf(c.request({ path: 'models' }))).toBe(code);
    expect(server.tcpConnections).toBeGreaterThanOrEqual(1);
    expect(server.bytes).toBe(0);
    expect(c.stats().errors[code as 'ERR_UPSTREAM_CERT_EXPIRED']).toBe(2);
  });

  it('a self-signed leaf for the right host → ERR_UPSTREAM_CERT_UNTRUSTED, no bytes', async () => {
    // What a hijacker's quick certificate looks like: its own issuer, the right name, in no CA file.
    const dir = pki.dir;
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'self-signed-key.pem'),
        '-out',
        join(dir, 'self-signed.pem'),
      ],
      { stdio: 'ignore' },
    );
    const server = await recording({
      certPem: readFileSync(join(dir, 'self-signed.pem'), 'utf8'),
      keyPem: readFileSync(join(dir, 'self-signed-key.pem'), 'utf8'),
    });
    const c = await client(server.port);
    expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_CERT_UNTRUSTED');
    expect(server.bytes).toBe(0);
  });

  it('an SPKI pin that does not match → ERR_UPSTREAM_PIN_MISMATCH, no bytes', async () => {
    const server = await recording(pki.server);
    const otherPin = spkiPin(new X509Certificate(pki.otherCa.server.certPem));
    const c = await client(server.port, { pins: [otherPin] });
    expect(await codeOf(c.request({ path: 'models', method: 'POST', body: 'secret' }))).toBe(
      'ERR_UPSTREAM_PIN_MISMATCH',
    );
    expect(server.handshakes + server.tcpConnections).toBeGreaterThanOrEqual(1);
    expect(server.bytes).toBe(0);
  });

  it('a matching SPKI pin (sha256/ form) passes', async () => {
    const server = await recording(pki.server, true);
    const pin = `sha256/${spkiPin(new X509Certificate(pki.server.certPem))}`;
    const c = await client(server.port, {
      pins: [spkiPin(new X509Certificate(pki.otherCa.server.certPem)), pin],
    });
    const res = await c.request({ path: 'models' });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('NODE_TLS_REJECT_UNAUTHORIZED=0 changes nothing for our connections', async () => {
    const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      const server = await recording(pki.otherCa.server);
      const c = await client(server.port);
      expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_CERT_UNTRUSTED');
      expect(server.bytes).toBe(0);
    } finally {
      if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
    }
  });
});

describe('old TLS versions', () => {
  it('an upstream offering only TLS 1.0 (openssl s_server) → ERR_UPSTREAM_TLS_VERSION', async () => {
    const server = await opensslTls10Server(pki.server.cert, pki.server.key);
    closers.push(() => server.close());
    const c = await client(server.port);
    expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_TLS_VERSION');
  });

  it('an upstream offering only TLS 1.1 (Node) → ERR_UPSTREAM_TLS_VERSION, no bytes', async () => {
    const server = await recordingTlsServer({
      cert: pki.server.certPem,
      key: pki.server.keyPem,
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    });
    closers.push(() => server.close());
    const c = await client(server.port);
    expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_TLS_VERSION');
    expect(server.bytes).toBe(0);
  });

  it('minTlsVersion TLSv1.3 refuses a TLS 1.2-only upstream', async () => {
    const server = await recordingTlsServer({
      cert: pki.server.certPem,
      key: pki.server.keyPem,
      maxVersion: 'TLSv1.2',
    });
    closers.push(() => server.close());
    const c = await client(server.port, { minTlsVersion: 'TLSv1.3' });
    expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_TLS_VERSION');
    expect(server.bytes).toBe(0);
  });
});

describe('redirects are never followed', () => {
  it.each([
    ['https → http', (p: number) => `http://127.0.0.1:${p}/v1/steal`],
    ['to another https origin', (p: number) => `https://127.0.0.1:${p}/v1/steal`],
    ['to the same origin', () => '/v1/other'],
  ])('%s → ERR_UPSTREAM_REDIRECT, the target gets nothing', async (_name, location) => {
    const target = await recording(pki.server, true);
    const redirecting = await httpsServer(
      { cert: pki.server.certPem, key: pki.server.keyPem },
      (req, res) => {
        req.resume();
        res.writeHead(307, { location: location(target.port) }).end();
      },
    );
    closers.push(() => redirecting.close());
    const c = await client(redirecting.port);
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'secret prompt' }] });
    expect(await codeOf(c.fetch(`${c.baseUrl}chat/completions`, { method: 'POST', body }))).toBe(
      'ERR_UPSTREAM_REDIRECT',
    );
    expect(await codeOf(c.request({ path: 'chat/completions', method: 'POST', body }))).toBe(
      'ERR_UPSTREAM_REDIRECT',
    );
    expect(target.tcpConnections).toBe(0);
  });
});

describe('requests outside the upstream are refused before connecting (no SSRF)', () => {
  let server: RecordingServer;
  beforeAll(async () => {
    server = await recording(pki.server, true);
  });

  it.each([
    ['another host', (p: number) => `https://evil.example:${p}/v1/models`],
    ['another port', () => 'https://localhost:1/v1/models'],
    ['http scheme', (p: number) => `http://localhost:${p}/v1/models`],
    ['outside the base path', (p: number) => `https://localhost:${p}/admin`],
    ['dot-dot traversal', (p: number) => `https://localhost:${p}/v1/../admin`],
    ['encoded dot-dot', (p: number) => `https://localhost:${p}/v1/%2e%2e/admin`],
    ['encoded slash', (p: number) => `https://localhost:${p}/v1/..%2fadmin`],
    ['prefix look-alike', (p: number) => `https://localhost:${p}/v1admin`],
    ['protocol-relative', () => '//evil.example/v1/models'],
    ['credentials in URL', (p: number) => `https://user:pw@localhost:${p}/v1/models`],
    ['file scheme', () => 'file:///etc/passwd'],
  ])('fetch: %s', async (_name, url) => {
    const c = await client(server.port);
    expect(await codeOf(c.fetch(url(server.port)))).toBe('ERR_UPSTREAM_ORIGIN_MISMATCH');
    expect(c.stats().handshakes).toBe(0);
    expect(c.stats().refused).toBe(1);
  });

  it.each(['../admin', '/../admin', '%2e%2e/admin', '..%2F..%2Fadmin', 'x/../../admin'])(
    'request path %s',
    async (path) => {
      const c = await client(server.port);
      expect(await codeOf(c.request({ path }))).toBe('ERR_UPSTREAM_ORIGIN_MISMATCH');
      expect(c.stats().handshakes).toBe(0);
    },
  );

  it('fetch accepts Node’s own Request, Headers and FormData (another undici copy)', async () => {
    const c = await client(server.port);
    const form = new FormData();
    form.append('purpose', 'fine-tune');
    form.append('file', new Blob(['line one\n']), 'data.jsonl');
    const res = await c.fetch(
      new Request(`${c.baseUrl}files`, {
        method: 'POST',
        headers: new Headers({ 'x-trace': 'abc' }),
        body: form,
      }),
    );
    expect(res.status).toBe(200);
    const seen = server.text();
    expect(seen).toContain('POST /v1/files HTTP/1.1');
    expect(seen).toMatch(/x-trace: abc/i);
    expect(seen).toMatch(/content-type: multipart\/form-data; boundary=/i);
    expect(seen).toContain('filename="data.jsonl"');
    expect(seen).toContain('line one');
    // FormData straight in init (what the OpenAI SDK does for uploads).
    const res2 = await c.fetch(`${c.baseUrl}uploads`, { method: 'POST', body: form });
    expect(res2.status).toBe(200);
    expect(server.text()).toMatch(
      /POST \/v1\/uploads HTTP\/1\.1[\s\S]*content-type: multipart\/form-data; boundary=[\s\S]*filename="data\.jsonl"/i,
    );
  });

  it('control: a path under the base URL goes through', async () => {
    const c = await client(server.port);
    expect((await c.fetch('models?limit=1')).status).toBe(200);
    expect(server.text()).toContain('GET /v1/models?limit=1 HTTP/1.1');
    // A request path is always relative to the base: leading slashes cannot name a host.
    const res = await c.request({ path: '//evil.example/x' });
    await res.body.dump();
    expect(server.text()).toContain('GET /v1/evil.example/x HTTP/1.1');
  });
});

describe('timeouts and stalls', () => {
  it('slow response headers → ERR_UPSTREAM_TIMEOUT', async () => {
    const server = await httpsServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req) =>
      req.resume(),
    );
    closers.push(() => server.close());
    const c = await client(server.port, { timeouts: { connectMs: 3000, headersMs: 200, bodyIdleMs: 3000 } });
    expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_TIMEOUT');
    expect(await codeOf(c.fetch('models'))).toBe('ERR_UPSTREAM_TIMEOUT');
  });

  it('a stream that stalls mid-way → ERR_UPSTREAM_TIMEOUT while reading, connection released', async () => {
    const server = await httpsServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"first":true}\n\n');
      // ...and nothing more: the upstream hangs.
    });
    closers.push(() => server.close());
    const c = await client(server.port, { timeouts: { connectMs: 3000, headersMs: 3000, bodyIdleMs: 200 } });
    const res = await c.fetch('chat/completions', { method: 'POST', body: '{}' });
    const reader = res.body?.getReader();
    const first = await reader?.read();
    expect(Buffer.from(first?.value ?? []).toString()).toContain('first');
    expect(await codeOf(reader?.read() ?? Promise.resolve())).toBe('ERR_UPSTREAM_TIMEOUT');

    const res2 = await c.request({ path: 'chat/completions', method: 'POST', body: '{}' });
    expect(await codeOf(res2.body.text().catch((e: unknown) => Promise.reject(c.recordError(e))))).toBe(
      'ERR_UPSTREAM_TIMEOUT',
    );
    expect(c.stats().errors.ERR_UPSTREAM_TIMEOUT).toBe(2);
    // Each stalled connection was dropped; nothing is left open on the server.
    await expect
      .poll(() => new Promise<number>((r) => server.server.getConnections((_e, n) => r(n))))
      .toBe(0);
  });

  it('an abort while waiting for headers → ERR_UPSTREAM_ABORTED (request) / AbortError (fetch)', async () => {
    const arrived = deferred();
    const server = await httpsServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req) => {
      req.resume();
      arrived.resolve();
    });
    closers.push(() => server.close());
    const c = await client(server.port);
    const ac = new AbortController();
    const pending = codeOf(c.request({ path: 'models', signal: ac.signal }));
    await arrived.promise;
    ac.abort();
    expect(await pending).toBe('ERR_UPSTREAM_ABORTED');
    const ac2 = new AbortController();
    ac2.abort();
    await expect(c.fetch('models', { signal: ac2.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('a handshake that never completes → ERR_UPSTREAM_TIMEOUT (connect timeout)', async () => {
    // Accepts TCP and never answers the ClientHello.
    const silent = net.createServer((socket) => socket.on('error', () => undefined));
    const port = await listen(silent);
    closers.push(() => closeServer(silent));
    const c = await client(port, { timeouts: { connectMs: 200, headersMs: 3000, bodyIdleMs: 3000 } });
    expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_TIMEOUT');
  });

  it('a malformed HTTP answer → ERR_UPSTREAM_BAD_RESPONSE', async () => {
    const server = await recordingTlsServer({ cert: pki.server.certPem, key: pki.server.keyPem });
    closers.push(() => server.close());
    server.server.on('secureConnection', (socket: import('node:tls').TLSSocket) =>
      socket.once('data', () => socket.end('HTTP/1.1 2x0 Wat\r\n\r\n')),
    );
    const c = await client(server.port);
    expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_BAD_RESPONSE');
  });

  it('close() does not hang on a stream that never ends: it is cut after the grace period', async () => {
    const server = await httpsServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {}\n\n'); // and never ends
    });
    closers.push(() => server.close());
    const registry = await createUpstreamRegistry({
      upstreams: {
        t: {
          baseUrl: `https://localhost:${server.port}/v1`,
          ca: { file: pki.ca.cert },
          timeouts: { bodyIdleMs: 600_000 },
        },
      },
    });
    const res = await registry.client('t').request({ path: 'stream' });
    const reading = res.body.text().then(
      () => 'ended',
      () => 'cut',
    );
    await registry.close();
    expect(await reading).toBe('cut');
  });

  it('an unreachable upstream → ERR_UPSTREAM_CONNECT', async () => {
    const probe = await recording(pki.server);
    const port = probe.port;
    await probe.close();
    const c = await client(port);
    expect(await codeOf(c.request({ path: 'models' }))).toBe('ERR_UPSTREAM_CONNECT');
  });
});

describe('egress proxy (HTTP CONNECT, TLS end to end)', () => {
  it('tunnels to the upstream; the proxy sees only the CONNECT line and ciphertext', async () => {
    const upstream = await recording(pki.server, true);
    const proxy = await connectProxy();
    closers.push(() => proxy.close());
    const c = await client(upstream.port, { egressProxy: { url: `http://127.0.0.1:${proxy.port}` } });
    const res = await c.fetch('chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"messages":[{"role":"user","content":"top secret prompt"}]}',
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(proxy.connects).toEqual([`CONNECT localhost:${upstream.port} HTTP/1.1`]);
    const relayed = proxy.relayed().toString('latin1');
    expect(relayed.length).toBeGreaterThan(0);
    expect(relayed).not.toContain('POST /v1');
    expect(relayed).not.toContain('top secret prompt');
    expect(upstream.text()).toContain('top secret prompt');
    expect(c.stats().handshakes).toBe(1);
  });

  it('through the proxy, an impostor upstream is still refused with no bytes', async () => {
    const impostor = await recording(pki.otherCa.server);
    const proxy = await connectProxy();
    closers.push(() => proxy.close());
    const c = await client(impostor.port, { egressProxy: { url: `http://127.0.0.1:${proxy.port}` } });
    expect(await codeOf(c.request({ path: 'models', method: 'POST', body: 'secret' }))).toBe(
      'ERR_UPSTREAM_CERT_UNTRUSTED',
    );
    expect(impostor.bytes).toBe(0);
  });
});

describe('start-up refusals', () => {
  it.each([
    ['http baseUrl', { baseUrl: 'http://localhost:1/v1' }, /"upstreams\.t\.baseUrl" must be an https: URL/],
    [
      'unknown option',
      { baseUrl: 'https://localhost:1/v1', rejectUnauthorized: false },
      /unknown option "rejectUnauthorized"/,
    ],
    [
      'missing env key',
      { baseUrl: 'https://localhost:1/v1', apiKey: { env: 'SHIELD_TEST_NO_SUCH_VAR' } },
      /SHIELD_TEST_NO_SUCH_VAR is not set/,
    ],
    ['bad pin', { baseUrl: 'https://localhost:1/v1', pins: ['abc'] }, /"upstreams\.t\.pins\[0\]"/],
    [
      'TLS 1.1 minimum',
      { baseUrl: 'https://localhost:1/v1', minTlsVersion: 'TLSv1.1' },
      /"upstreams\.t\.minTlsVersion"/,
    ],
  ])('%s', async (_name, options, message) => {
    await expect(createUpstreamRegistry({ upstreams: { t: options as UpstreamOptions } })).rejects.toThrow(
      message,
    );
  });

  it('a missing CA file stops start-up naming the file', async () => {
    await expect(
      createUpstreamRegistry({
        upstreams: { t: { baseUrl: 'https://localhost:1/v1', ca: { file: '/nonexistent/ca.pem' } } },
      }),
    ).rejects.toMatchObject({
      code: 'ERR_CERT_FILE_UNREADABLE',
      message: expect.stringContaining('/nonexistent/ca.pem'),
    });
  });

  it('an expired client certificate stops start-up', async () => {
    await expect(
      createUpstreamRegistry({
        upstreams: {
          t: {
            baseUrl: 'https://localhost:1/v1',
            clientCertificate: { cert: pki.expired.client.cert, key: pki.expired.client.key },
          },
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_CERT_EXPIRED' });
  });

  it('a client certificate without clientAuth stops start-up', async () => {
    await expect(
      createUpstreamRegistry({
        upstreams: {
          t: {
            baseUrl: 'https://localhost:1/v1',
            clientCertificate: { cert: pki.wrongEku.client.cert, key: pki.wrongEku.client.key },
          },
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_CERT_USAGE' });
  });

  it('the API key never appears in an error', async () => {
    const err = await createUpstreamRegistry({
      upstreams: { t: { baseUrl: 'https://localhost:1/v1', apiKey: { file: pki.ca.key } } },
    }).catch((e: unknown) => e as Error);
    // A PEM file is not a one-line key: refused, naming the file, never quoting it.
    expect(String(err)).toContain(pki.ca.key);
    expect(String(err)).not.toContain(readFileSync(pki.ca.key, 'utf8').split('\n')[1] ?? 'x');
  });
});
