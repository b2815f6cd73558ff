import 'reflect-metadata';
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:https';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestHooksOf, type HttpsRequestHookRegistry } from '@inference-shield/https/internal';
import { HelloAppModule, helloCalls } from './fixtures/hello.app.js';
import { startApp, type AppCallOptions, type TestApp } from '../support/harness.js';
import { rawTls } from './support/clients.js';

/**
 * The one seam for server hooks: hooks added through `requestHooksOf(server)` run after the
 * connection gate, TLS and the request gate, and before the framework, in the order added.
 */
describe.each(['express', 'fastify'] as const)('request hooks (%s)', (adapter) => {
  let t: TestApp;
  let hooks: HttpsRequestHookRegistry;
  const seen: string[] = [];

  beforeAll(async () => {
    t = await startApp(HelloAppModule, { limits: { maxBodyBytes: 64 }, adapter });
    const found = requestHooksOf(t.https.app.getHttpServer());
    if (found === undefined) throw new Error('no request hooks on the server createHttpsApp built');
    hooks = found;
  });

  afterAll(async () => {
    await t?.https.close();
  });

  beforeEach(() => {
    seen.length = 0;
  });

  const call = (path: string, extra: AppCallOptions = {}) => t.call(path, extra);

  it('runs the hooks in the order added, after the request gate, then the framework', async () => {
    const removeA = hooks.add('test:first', (req, res, next) => {
      // The request gate ran: the security headers are on the response already.
      seen.push(`first ${String(res.getHeader('strict-transport-security') !== undefined)}`);
      next(req, res);
    });
    const removeB = hooks.add('test:second', (req, res, next) => {
      seen.push('second');
      setImmediate(() => next(req, res));
    });
    try {
      expect(hooks.names()).toEqual(['test:first', 'test:second']);
      const before = helloCalls.count;
      const r = await call('/hello');
      expect(r.status).toBe(200);
      expect(seen).toEqual(['first true', 'second']);
      expect(helloCalls.count).toBe(before + 1);
    } finally {
      removeA();
      removeB();
    }
    expect(hooks.names()).toEqual([]);
    await call('/hello');
    expect(seen).toEqual(['first true', 'second']);
  });

  it('never sees a request the gate refused (no Host, a body over the limit)', async () => {
    const remove = hooks.add('test:watch', (req, res, next) => {
      seen.push(req.url ?? '');
      next(req, res);
    });
    try {
      const noHost = await rawTls(t.port, { ca: t.pki.ca.certPem }, (s) => {
        s.write('GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n');
      });
      expect(noHost.data).toMatch(/^HTTP\/1\.1 400 [\s\S]*ERR_BAD_REQUEST/);
      const big = await call('/echo', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text: 'x'.repeat(200) }),
      });
      expect(big.status).toBe(413);
      expect(seen).toEqual([]);
    } finally {
      remove();
    }
  });

  it('lets a hook answer the request itself: the framework never runs', async () => {
    const remove = hooks.add('test:refuse', (_req: IncomingMessage, res) => {
      res.statusCode = 401;
      res.setHeader('Connection', 'close');
      res.end('{"error":{"code":"ERR_TOKEN_MISSING"}}');
    });
    try {
      const before = helloCalls.count;
      const r = await call('/hello');
      expect(r.status).toBe(401);
      expect(r.headers['strict-transport-security']).toBeDefined();
      expect(helloCalls.count).toBe(before);
    } finally {
      remove();
    }
  });

  it('fails closed when a hook throws: a coded 500, the framework never runs, nothing of the error sent', async () => {
    const remove = hooks.add('test:throws', () => {
      throw new Error('secret detail of the request');
    });
    try {
      const before = helloCalls.count;
      const r = await call('/hello');
      expect(r.status).toBe(500);
      expect(JSON.parse(r.text)).toMatchObject({ code: 'ERR_INTERNAL' });
      expect(r.text).not.toContain('secret');
      expect(r.headers['connection']).toBe('close');
      expect(helloCalls.count).toBe(before);
    } finally {
      remove();
    }
  });

  it('refuses a second hook of the same name, and a bad name', () => {
    const remove = hooks.add('test:once', (req, res, next) => next(req, res));
    try {
      expect(() => hooks.add('test:once', (req, res, next) => next(req, res))).toThrow(/already registered/);
      expect(() => hooks.add('Not A Name', (req, res, next) => next(req, res))).toThrow(TypeError);
    } finally {
      remove();
    }
  });
});

describe('requestHooksOf on a server createHttpsApp did not build', () => {
  it('is undefined: a package hooking requests then uses its own way', () => {
    expect(requestHooksOf(createServer())).toBeUndefined();
    expect(requestHooksOf(undefined)).toBeUndefined();
  });
});
