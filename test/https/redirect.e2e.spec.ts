import 'reflect-metadata';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { helloCalls, HelloAppModule } from './fixtures/hello.app.js';
import { testPki } from '../support/harness.js';
import { rawTcp } from './support/clients.js';

function plainCall(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; location?: string; connection?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          location: res.headers.location,
          connection: res.headers.connection,
          body,
        }),
      );
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{"secret":"sent in clear"}' : undefined);
  });
}

describe('the optional plain-HTTP redirect listener', () => {
  let pki: TestPki;
  let https: HttpsApp;
  let httpsPort: number;
  let redirectPort: number;

  beforeAll(async () => {
    pki = await testPki('redirect');
    https = await createHttpsApp(HelloAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      redirect: { port: 0, targetHost: 'api.example.test' },
      nest: { logger: false },
    });
    const listening = await https.listen(0, '127.0.0.1');
    httpsPort = listening.port;
    redirectPort = listening.redirectPort ?? -1;
  });

  afterAll(async () => {
    await https?.close();
  });

  it.each(['GET', 'HEAD'])(
    'answers %s with a 308 to the configured HTTPS origin, whatever the Host header says',
    async (method) => {
      const before = helloCalls.count;
      const r = await plainCall(redirectPort, method, '/hello?x=1', { Host: 'evil.example' });
      expect(r.status).toBe(308);
      expect(r.location).toBe(`https://api.example.test:${httpsPort}/hello?x=1`);
      expect(r.connection).toBe('close');
      expect(helloCalls.count).toBe(before);
    },
  );

  it.each(['POST', 'PUT', 'DELETE', 'OPTIONS'])(
    'answers %s with a 400, never reaching the app',
    async (method) => {
      const before = helloCalls.count;
      const r = await plainCall(redirectPort, method, '/echo');
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ code: 'ERR_HTTP_TO_HTTPS' });
      expect(helloCalls.count).toBe(before);
    },
  );

  it('redirects absolute-form and protocol-relative targets to "/" only', async () => {
    const absolute = await rawTcp(
      redirectPort,
      'GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n',
    );
    expect(absolute.data).toContain(`Location: https://api.example.test:${httpsPort}/\r\n`);
    const protocolRelative = await plainCall(redirectPort, 'GET', '//evil.example/x');
    expect(protocolRelative.location).toBe(`https://api.example.test:${httpsPort}/`);
  });

  it('is off unless configured', async () => {
    const app = await createHttpsApp(HelloAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      nest: { logger: false },
    });
    try {
      expect(await app.listen(0, '127.0.0.1')).not.toHaveProperty('redirectPort');
    } finally {
      await app.close();
    }
  });

  it('omits the port for 443 and refuses a target host that is not a host name', async () => {
    const app = await createHttpsApp(HelloAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      redirect: { port: 0, targetHost: 'api.example.test', targetPort: 443 },
      nest: { logger: false },
    });
    try {
      const { redirectPort: port = -1 } = await app.listen(0, '127.0.0.1');
      expect((await plainCall(port, 'GET', '/a')).location).toBe('https://api.example.test/a');
    } finally {
      await app.close();
    }
    await expect(
      createHttpsApp(HelloAppModule, {
        tls: { cert: pki.server.cert, key: pki.server.key },
        redirect: { port: 0, targetHost: 'evil.example/path' },
      }),
    ).rejects.toThrow(/"redirect\.targetHost"/);
  });
});
