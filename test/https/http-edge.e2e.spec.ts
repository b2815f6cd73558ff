import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpsApp } from '@inference-shield/https';
import type { TestPki } from '@inference-shield/dev-pki';
import { helloCalls, HelloAppModule } from './fixtures/hello.app.js';
import { startApp } from '../support/harness.js';
import { rawTls } from './support/clients.js';

// RFC 9112 §3.2 (Host) and §6.1 (Transfer-Encoding in HTTP/1.0): Node's parser answered some of
// these itself (a bare 400 without our code or headers) and let the others through.
const REFUSED: [string, string][] = [
  ['HTTP/1.1 without Host', 'GET /hello HTTP/1.1\r\n\r\n'],
  ['two Host headers', 'GET /hello HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n'],
  ['two Host headers, other casing', 'GET /hello HTTP/1.1\r\nhost: localhost\r\nHOST: localhost\r\n\r\n'],
  ['a Host that is not a host', 'GET /hello HTTP/1.1\r\nHost: localhost/admin\r\n\r\n'],
  [
    'HTTP/1.0 with Transfer-Encoding: chunked',
    'POST /echo HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
  ],
];

describe.each(['express', 'fastify'] as const)('HTTP/1.1 framing edge cases (%s)', (adapter) => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    ({ pki, https, port } = await startApp(HelloAppModule, { adapter }));
  });

  afterAll(async () => {
    await https?.close();
  });

  it.each(REFUSED)('%s: coded 400 with our headers, connection closed, no handler', async (_n, request) => {
    const before = helloCalls.count;
    const r = await rawTls(port, { ca: pki.ca.certPem }, (socket) => {
      socket.write(request);
    });
    expect(r.closed).toBe(true);
    expect(r.data.startsWith('HTTP/1.1 400 ')).toBe(true);
    expect(r.data).toContain('{"code":"ERR_BAD_REQUEST","message":"The request is malformed."}');
    expect(r.data).toContain('Strict-Transport-Security: max-age=31536000');
    expect(r.data).toContain('X-Content-Type-Options: nosniff');
    expect(r.data).toMatch(/\r\nConnection: close\r\n/i);
    // One answer only.
    expect(r.data.split('HTTP/1.').length - 1).toBe(1);
    expect(helloCalls.count).toBe(before);
  });

  it.each([
    ['HTTP/1.1 with one Host', 'GET /hello HTTP/1.1\r\nHost: localhost:8443\r\nConnection: close\r\n\r\n'],
    ['HTTP/1.1 with an IPv6 Host', 'GET /hello HTTP/1.1\r\nHost: [::1]:8443\r\nConnection: close\r\n\r\n'],
    ['HTTP/1.0 without Host', 'GET /hello HTTP/1.0\r\n\r\n'],
  ])('%s is served', async (_n, request) => {
    const r = await rawTls(port, { ca: pki.ca.certPem }, (socket) => {
      socket.write(request);
    });
    expect(r.data.startsWith('HTTP/1.1 200 ')).toBe(true);
  });
});
