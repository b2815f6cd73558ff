import 'reflect-metadata';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isShieldErrorCode } from '@inference-shield/core';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsAdapterChoice, type HttpsApp } from '@inference-shield/https';
import { helloCalls, HelloAppModule } from '../../https/fixtures/hello.app.js';
import { call, testPki } from '../../support/harness.js';

const MAX_BODY = 4096;
const JSON_TYPE = { 'Content-Type': 'application/json' };

// THREATS: "never a 500 for bad input"; "oversized body → 413". A compressed body is the classic
// way around a limit checked on Content-Length: 1 MB of JSON gzipped to about 1 KB.
const bomb = gzipSync(Buffer.from(`{"a":"${'x'.repeat(1_000_000)}"}`));

const REFUSED: [string, Record<string, string>, string | Buffer][] = [
  ['malformed JSON', JSON_TYPE, '{"a":'],
  [
    'a body that is not gzip under Content-Encoding: gzip',
    { ...JSON_TYPE, 'Content-Encoding': 'gzip' },
    'plain',
  ],
  ['a gzip bomb under the announced limit', { ...JSON_TYPE, 'Content-Encoding': 'gzip' }, bomb],
];

describe.each<HttpsAdapterChoice>(['express', 'fastify'])('hostile request bodies (%s)', (adapter) => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    pki = await testPki(`body-${String(adapter)}`);
    https = await createHttpsApp(
      HelloAppModule,
      {
        tls: { cert: pki.server.cert, key: pki.server.key },
        limits: { maxBodyBytes: MAX_BODY },
        reload: { watch: false, sighup: false },
        nest: { logger: false },
      },
      adapter,
    );
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
  });

  it('the bomb really is under the limit on the wire (so the test can fail)', () => {
    expect(bomb.length).toBeLessThan(MAX_BODY);
  });

  // Parser errors are the host app's framework errors: Nest answers them (a good guest does not
  // rewrite them), but never with a 500, never with a stack, and no handler runs.
  it.each(REFUSED)('refuses %s with a 4xx and no stack; no handler runs', async (_name, headers, body) => {
    const before = helloCalls.count;
    const r = await call(port, { ca: pki.ca.certPem, method: 'POST', path: '/echo', headers, body });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    const answer = JSON.parse(r.text) as { statusCode?: unknown; code?: unknown };
    expect(answer.statusCode === r.status || isShieldErrorCode(answer.code)).toBe(true);
    expect(r.text).not.toMatch(/\bat \S+ \(|node_modules/);
    expect(helloCalls.count).toBe(before);
  });

  it.each<[string, Record<string, string>, string]>([
    ['an unknown Content-Encoding', { ...JSON_TYPE, 'Content-Encoding': 'foo' }, '{}'],
    ['an unknown charset', { 'Content-Type': 'application/json; charset=bogus' }, '{}'],
    ['a __proto__ key', JSON_TYPE, '{"__proto__":{"polluted":1}}'],
    ['2000 levels of nesting', JSON_TYPE, '['.repeat(2000) + ']'.repeat(2000)],
    ['a duplicated urlencoded key', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'a=1&a=2'],
  ])('answers %s without a 500, and pollutes no prototype', async (_name, headers, body) => {
    const r = await call(port, { ca: pki.ca.certPem, method: 'POST', path: '/echo', headers, body });
    expect(r.status).toBeLessThan(500);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
