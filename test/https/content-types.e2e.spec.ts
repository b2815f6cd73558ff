import 'reflect-metadata';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import type { TestPki } from '@inference-shield/dev-pki';
import { consumed, ConsumesAppModule } from './fixtures/consumes.app.js';
import { call, startApp, testPki } from '../support/harness.js';

const MULTIPART = 'multipart/form-data; boundary=x';
const multipartBody = '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n';

// Issue #13: these reached a JSON route and got 400 ERR_INVALID_INPUT from its validator.
const NOT_JSON: [string, Record<string, string>, string][] = [
  ['text/plain', { 'Content-Type': 'text/plain' }, '{"a":1}'],
  ['multipart/form-data', { 'Content-Type': MULTIPART }, multipartBody],
  ['no content type', {}, '{"a":1}'],
  ['application/vnd.api+json', { 'Content-Type': 'application/vnd.api+json' }, '{"a":1}'],
  ['a URL-encoded form', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'a=1'],
];

async function post(port: number, ca: string, path: string, headers: Record<string, string>, body: string) {
  const r = await call(port, { ca, method: 'POST', path, headers, body });
  return { status: r.status, body: JSON.parse(r.text || 'null') as Record<string, unknown> };
}

describe.each(['express', 'fastify'] as const)('body types (%s, parsing as Nest sets it up)', (adapter) => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    ({ pki, https, port } = await startApp(ConsumesAppModule, { adapter }));
  });

  afterAll(async () => {
    await https?.close();
  });

  it.each(NOT_JSON)(
    'a JSON route answers %s with 415 ERR_UNSUPPORTED_MEDIA_TYPE; no handler runs',
    async (_n, headers, body) => {
      consumed.length = 0;
      const r = await post(port, pki.ca.certPem, '/ours/json', headers, body);
      expect(r).toEqual({
        status: 415,
        body: { code: 'ERR_UNSUPPORTED_MEDIA_TYPE', message: 'Unsupported content type.' },
      });
      expect(consumed).toEqual([]);
    },
  );

  it('a JSON route takes JSON (with a charset)', async () => {
    const r = await post(
      port,
      pki.ca.certPem,
      '/ours/json',
      { 'Content-Type': 'application/json; charset=utf-8' },
      '{"a":1}',
    );
    expect(r).toEqual({ status: 201, body: { body: { a: 1 } } });
  });

  it('a form route takes a form and refuses JSON with 415', async () => {
    const form = await post(
      port,
      pki.ca.certPem,
      '/ours/form',
      { 'Content-Type': 'application/x-www-form-urlencoded' },
      'a=1',
    );
    expect(form).toEqual({ status: 201, body: { body: { a: '1' } } });
    const json = await post(
      port,
      pki.ca.certPem,
      '/ours/form',
      { 'Content-Type': 'application/json' },
      '{"a":1}',
    );
    expect(json.status).toBe(415);
  });

  it('the host route keeps Nest’s default parsing: JSON and forms parsed', async () => {
    expect(
      await post(port, pki.ca.certPem, '/host/echo', { 'Content-Type': 'application/json' }, '{"a":1}'),
    ).toEqual({
      status: 201,
      body: { type: 'object', body: { a: 1 } },
    });
    expect(
      await post(
        port,
        pki.ca.certPem,
        '/host/echo',
        { 'Content-Type': 'application/x-www-form-urlencoded' },
        'a=1',
      ),
    ).toEqual({ status: 201, body: { type: 'object', body: { a: '1' } } });
  });
});

describe('body types (express, the host configured its own parsing)', () => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    // The host turns Nest's defaults off and parses text only.
    pki = await testPki('content-types-host');
    https = await createHttpsApp(ConsumesAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      reload: { watch: false, sighup: false },
      nest: { logger: false, bodyParser: false },
    });
    (https.app as NestExpressApplication).useBodyParser('text');
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
  });

  it('keeps the host’s parsers: a text body reaches the host route as text, JSON stays unparsed there', async () => {
    const text = await post(port, pki.ca.certPem, '/host/echo', { 'Content-Type': 'text/plain' }, 'hello');
    expect(text).toEqual({ status: 201, body: { type: 'string', body: 'hello' } });
    const json = await post(
      port,
      pki.ca.certPem,
      '/host/echo',
      { 'Content-Type': 'application/json' },
      '{"a":1}',
    );
    expect(json.body['type']).toBe('undefined');
  });

  it('our routes still parse what they declare, and refuse the host’s text with 415', async () => {
    expect(
      await post(port, pki.ca.certPem, '/ours/json', { 'Content-Type': 'application/json' }, '{"a":1}'),
    ).toEqual({
      status: 201,
      body: { body: { a: 1 } },
    });
    expect(
      await post(
        port,
        pki.ca.certPem,
        '/ours/form',
        { 'Content-Type': 'application/x-www-form-urlencoded' },
        'a=1&b=2',
      ),
    ).toEqual({
      status: 201,
      body: { body: { a: '1', b: '2' } },
    });
    expect(
      (await post(port, pki.ca.certPem, '/ours/json', { 'Content-Type': 'text/plain' }, '{"a":1}')).status,
    ).toBe(415);
    expect(
      (await post(port, pki.ca.certPem, '/ours/json', { 'Content-Type': 'application/json' }, '{"a":')).body,
    ).toMatchObject({
      code: 'ERR_BAD_REQUEST',
    });
  });
});
