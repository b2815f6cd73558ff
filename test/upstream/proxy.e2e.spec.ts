/**
 * The streaming proxy in a real Nest app over HTTPS (Express), in front of the stand-in LLM and of
 * scripted upstreams: SSE chunk by chunk, the caller's Authorization never forwarded, the identity
 * assertion verifiable with the service's public key, cancellation, error mapping, and no secret
 * in any log line.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import {
  Controller,
  Get,
  Injectable,
  Module,
  Post,
  Req,
  Res,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InjectUpstreamProxy,
  InjectUpstreamRegistry,
  UpstreamModule,
  upstreamClientToken,
  type CallerIdentity,
  type UpstreamClient,
  type UpstreamProxy,
  type UpstreamRegistry,
} from '@inference-shield/upstream';
import { createLlmStandin, type LlmStandin } from '../../apps/llm-standin/src/llm-standin.server.js';
import { CaptureLogger, startApp, type TestApp } from '../support/harness.js';
import { deferred, httpsServer, testPki } from './upstream-fixtures.js';

const UPSTREAM_KEY = 'sk-upstream-key-for-proxy-9931';
const CALLER_TOKEN = 'caller-token-alice-7781';
const SECRET_PROMPT = 'my very secret prompt 5521';
const SERVICE_ID = 'spiffe://shield.local/model-server';
const CALLER_KEY = Symbol('test-caller');

/** Every log line of the app, to check nothing sensitive is logged. */
const logger = new CaptureLogger();

/** Stands in for the identity guard: a verified bearer token becomes a frozen caller on the request. */
@Injectable()
class TestCallerGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx
      .switchToHttp()
      .getRequest<{ headers: Record<string, string>; [CALLER_KEY]?: CallerIdentity }>();
    if (req.headers.authorization === `Bearer ${CALLER_TOKEN}`) {
      req[CALLER_KEY] = Object.freeze({
        subject: 'alice',
        issuer: 'https://idp.test',
        scopes: ['llm:chat', 'models:read'],
        method: 'oidc',
      });
    }
    return true;
  }
}

@Controller('v1')
@UseGuards(TestCallerGuard)
class LlmProxyController {
  constructor(
    @InjectUpstreamProxy('llm') private readonly llm: UpstreamProxy,
    @InjectUpstreamProxy('slow') private readonly slow: UpstreamProxy,
    @InjectUpstreamProxy('scripted') private readonly scripted: UpstreamProxy,
    @InjectUpstreamRegistry() private readonly registry: UpstreamRegistry,
  ) {}

  @Post('chat/completions')
  chat(@Req() req: never, @Res() res: never): Promise<void> {
    return this.llm.forward(req, res, { path: 'chat/completions' });
  }

  @Post('slow/chat/completions')
  slowChat(@Req() req: never, @Res() res: never): Promise<void> {
    return this.slow.forward(req, res, { path: 'chat/completions' });
  }

  @Post('scripted/:name')
  script(@Req() req: { params: { name: string } }, @Res() res: never): Promise<void> {
    return this.scripted.forward(req as never, res, { path: req.params.name });
  }

  @Get('.well-known/caller-assertion-jwks')
  jwks(): unknown {
    return this.registry.callerAssertionJwks();
  }
}

let pki: Awaited<ReturnType<typeof testPki>>;
let standin: LlmStandin;
let slowStandin: LlmStandin;
let scripted: Awaited<ReturnType<typeof httpsServer>>;
let app: TestApp;
let caller: Agent;
let base: string;
/** Scripted upstream: each test sets what `/v1/<name>` does. */
const scripts = new Map<
  string,
  (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void
>();
const scriptedSeen: { path: string; headers: Record<string, unknown>; body: string }[] = [];

beforeAll(async () => {
  pki = await testPki();
  const keyFile = join(pki.dir, 'upstream-key');
  writeFileSync(keyFile, UPSTREAM_KEY, { mode: 0o600 });
  const serverFiles = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert };
  standin = await createLlmStandin({
    ...serverFiles,
    port: 0,
    apiKeys: [UPSTREAM_KEY],
    recordRequests: true,
  });
  slowStandin = await createLlmStandin({
    ...serverFiles,
    port: 0,
    apiKeys: [UPSTREAM_KEY],
    tokenDelayMs: 20,
  });
  scripted = await httpsServer(
    {
      cert: pki.server.certPem,
      key: pki.server.keyPem,
      ca: pki.ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        scriptedSeen.push({
          path: req.url ?? '',
          headers: { ...req.headers },
          body: Buffer.concat(chunks).toString(),
        });
        const script = scripts.get((req.url ?? '').replace('/v1/', ''));
        if (script) script(req, res);
        else res.writeHead(404).end();
      });
    },
  );
  const upstream = (url: string) => ({
    baseUrl: `${url}/v1`,
    ca: { file: pki.ca.cert },
    clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
    apiKey: { file: keyFile },
    proxy: { assertCaller: true, maxRequestBodyBytes: 64 * 1024, requestHeaders: ['x-hop-test'] },
  });

  @Module({
    imports: [
      UpstreamModule.forRoot({
        upstreams: {
          llm: upstream(standin.url),
          slow: upstream(slowStandin.url),
          scripted: {
            ...upstream(`https://localhost:${scripted.port}`),
            timeouts: { headersMs: 2000, bodyIdleMs: 2000 },
          },
        },
        callerAssertion: {
          issuer: SERVICE_ID,
          caller: (req) => (req as { [CALLER_KEY]?: CallerIdentity })[CALLER_KEY],
          ttlSeconds: 30,
        },
      }),
    ],
    controllers: [LlmProxyController],
    providers: [TestCallerGuard],
  })
  class AppModule {}

  const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  try {
    app = await startApp(AppModule, { pki, logger });
  } finally {
    if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
  }
  base = app.url;
  caller = new Agent({ connect: { ca: pki.ca.certPem } });
});

afterAll(async () => {
  await caller?.close();
  await app?.close();
  await standin?.close();
  await slowStandin?.close();
  await scripted?.close();
  pki?.cleanup();
});

/** One raw HTTP/1.1 request over TLS; resolves with the whole answer once the server closes. */
function rawHttps(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: Number(new URL(base).port),
      servername: 'localhost',
      ca: pki.ca.certPem,
    });
    let out = '';
    socket.on('secureConnect', () => socket.write(text));
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

function chatBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    model: 'standin-chat',
    messages: [{ role: 'user', content: SECRET_PROMPT }],
    ...extra,
  });
}

function post(path: string, body: string, headers: Record<string, string> = {}) {
  return request(`${base}${path}`, {
    method: 'POST',
    dispatcher: caller,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CALLER_TOKEN}`, ...headers },
    body,
  });
}

describe('streaming', () => {
  it('SSE chunks reach the caller one by one (the upstream waits for each to arrive)', async () => {
    const next = [deferred(), deferred(), deferred()];
    scripts.set('sse', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      void (async () => {
        for (let i = 0; i < 3; i++) {
          res.write(`data: {"n":${i}}\n\n`);
          // Only once the caller has this chunk does the upstream write the next one: a proxy
          // that buffered would never deliver it, and the test would time out.
          await next[i]?.promise;
        }
        res.end('data: [DONE]\n\n');
      })();
    });
    const res = await post('/v1/scripted/sse', chatBody({ stream: true }));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    const received: string[] = [];
    for await (const chunk of res.body) {
      const text = Buffer.from(chunk as Buffer).toString();
      for (const m of text.matchAll(/data: (\{.*?\}|\[DONE\])/g)) {
        received.push(m[1] ?? '');
        next[received.length - 1]?.resolve();
      }
    }
    expect(received).toEqual(['{"n":0}', '{"n":1}', '{"n":2}', '[DONE]']);
  });

  it('a streamed completion from the stand-in arrives complete, in the OpenAI chunk format', async () => {
    const res = await post('/v1/chat/completions', chatBody({ stream: true, max_tokens: 12 }));
    expect(res.statusCode).toBe(200);
    const text = await res.body.text();
    const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    const words = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice(6)) as { choices: { delta: { content?: string } }[] })
      .map((c) => c.choices[0]?.delta.content ?? '')
      .join('');
    expect(words.split(' ')).toHaveLength(12);
  });

  it('the caller hanging up cancels the upstream generation', async () => {
    const cancelled = deferred<{ path: string; tokensSent: number }>();
    slowStandin.events.once('cancel', cancelled.resolve);
    const res = await post('/v1/slow/chat/completions', chatBody({ stream: true, max_tokens: 4000 }));
    let chunks = 0;
    for await (const _ of res.body) {
      if (++chunks === 3) break; // leaves the loop and destroys the response: the caller is gone
    }
    const seen = await cancelled.promise;
    expect(seen.tokensSent).toBeLessThan(4000);
  });
});

describe('headers and credentials', () => {
  it('the caller’s Authorization and cookies never reach the upstream; ours does', async () => {
    const before = standin.requests.length;
    // A raw request: undici would consume `Connection` itself, and we want it on the wire.
    const body = chatBody();
    const head = await rawHttps(
      [
        'POST /v1/chat/completions HTTP/1.1',
        'host: localhost',
        'content-type: application/json',
        `content-length: ${Buffer.byteLength(body)}`,
        `authorization: Bearer ${CALLER_TOKEN}`,
        'cookie: session=caller-cookie',
        'x-api-key: caller-api-key',
        'x-request-id: trace-123',
        'connection: close, x-hop-test',
        'x-hop-test: must-not-pass',
        'x-shield-caller-assertion: forged.assertion.value',
        '',
        body,
      ].join('\r\n'),
    );
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const seen = standin.requests.slice(before);
    expect(seen).toHaveLength(1);
    const h = seen[0]?.headers ?? {};
    expect(h.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(JSON.stringify(h)).not.toContain(CALLER_TOKEN);
    expect(h.cookie).toBeUndefined();
    expect(h['x-api-key']).toBeUndefined();
    // Allow-listed, but named in Connection: hop-by-hop for this message (RFC 9110 §7.6.1).
    expect(h['x-hop-test']).toBeUndefined();
    expect(h['x-request-id']).toBe('trace-123');
    expect(h['x-shield-caller-assertion']).not.toBe('forged.assertion.value');
  });

  it('control: an allow-listed extra header not named in Connection is forwarded', async () => {
    const before = standin.requests.length;
    const res = await post('/v1/chat/completions', chatBody(), { 'x-hop-test': 'may-pass' });
    await res.body.dump();
    expect(standin.requests.slice(before)[0]?.headers['x-hop-test']).toBe('may-pass');
  });

  it('upstream response headers pass an allow-list (no set-cookie, no account headers)', async () => {
    const res = await post('/v1/chat/completions', chatBody());
    await res.body.dump();
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['x-request-id']).toMatch(/^req_/);
    expect(res.headers['openai-version']).toBe('2020-10-01');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['openai-organization']).toBeUndefined();
  });

  it('the identity assertion verifies with the service’s public keys', async () => {
    const before = standin.requests.length;
    const res = await post('/v1/chat/completions', chatBody());
    await res.body.dump();
    const assertion = standin.requests.slice(before)[0]?.headers['x-shield-caller-assertion'];
    expect(typeof assertion).toBe('string');
    const jwksRes = await request(`${base}/v1/.well-known/caller-assertion-jwks`, { dispatcher: caller });
    const jwks = (await jwksRes.body.json()) as Parameters<typeof createLocalJWKSet>[0];
    const { payload, protectedHeader } = await jwtVerify(assertion as string, createLocalJWKSet(jwks), {
      issuer: SERVICE_ID,
      audience: new URL(standin.url).origin,
      algorithms: ['ES256'],
      typ: 'shield-caller+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({
      sub: 'alice',
      caller_iss: 'https://idp.test',
      scope: 'llm:chat models:read',
      caller_method: 'oidc',
    });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBeLessThanOrEqual(60);
    expect(typeof payload.jti).toBe('string');
  });

  it('an anonymous request is not forwarded when attribution is required', async () => {
    const before = standin.stats.requests;
    const res = await post('/v1/chat/completions', chatBody(), { authorization: 'Bearer not-verified' });
    expect(res.statusCode).toBe(403);
    expect(await res.body.json()).toMatchObject({ code: 'ERR_CALLER_NOT_ALLOWED' });
    expect(standin.stats.requests).toBe(before);
  });

  it('a body over the limit is refused with 413 before contacting the upstream', async () => {
    const before = scriptedSeen.length;
    const res = await post('/v1/scripted/echo', JSON.stringify({ big: 'x'.repeat(70 * 1024) }));
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ code: 'ERR_BODY_TOO_LARGE' });
    expect(scriptedSeen.length).toBe(before);
  });
});

describe('upstream errors', () => {
  it.each([
    [500, 'ERR_UPSTREAM_BAD_RESPONSE', 502],
    [503, 'ERR_UPSTREAM_BAD_RESPONSE', 502],
    [401, 'ERR_UPSTREAM_BAD_RESPONSE', 502],
  ])('upstream %i → %s (%i), upstream body not leaked', async (status, code, ours) => {
    scripts.set(`status-${status}`, (_req, res) => {
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end('{"error":"internal detail: db at 10.0.0.7, stack trace"}');
    });
    const res = await post(`/v1/scripted/status-${status}`, chatBody());
    expect(res.statusCode).toBe(ours);
    const text = await res.body.text();
    expect(JSON.parse(text)).toMatchObject({ code });
    expect(text).not.toContain('10.0.0.7');
  });

  it('a caller error (400) passes through with its OpenAI error body', async () => {
    const res = await post('/v1/chat/completions', JSON.stringify({ model: 'standin-chat', messages: [] }));
    expect(res.statusCode).toBe(400);
    expect(await res.body.json()).toMatchObject({ error: { param: 'messages' } });
  });

  it('a redirecting upstream → 502 ERR_UPSTREAM_REDIRECT', async () => {
    scripts.set('redirect', (_req, res) =>
      res.writeHead(302, { location: 'http://127.0.0.1:1/steal' }).end(),
    );
    const res = await post('/v1/scripted/redirect', chatBody());
    expect(res.statusCode).toBe(502);
    expect(await res.body.json()).toMatchObject({ code: 'ERR_UPSTREAM_REDIRECT' });
  });

  it('an upstream too slow to answer → 504 ERR_UPSTREAM_TIMEOUT', async () => {
    scripts.set('hang', () => undefined);
    const res = await post('/v1/scripted/hang', chatBody());
    expect(res.statusCode).toBe(504);
    expect(await res.body.json()).toMatchObject({ code: 'ERR_UPSTREAM_TIMEOUT' });
  });

  it('a stream stalling mid-way is cut (the caller sees a truncated stream, not a clean end)', async () => {
    scripts.set('stall', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"n":0}\n\n');
    });
    const res = await post('/v1/scripted/stall', chatBody({ stream: true }));
    expect(res.statusCode).toBe(200);
    await expect(res.body.text()).rejects.toThrow();
  });
});

describe('start-up and logs', () => {
  it('NODE_TLS_REJECT_UNAUTHORIZED=0 was reported at start-up', () => {
    expect(logger.lines.some((l) => l.includes('NODE_TLS_REJECT_UNAUTHORIZED=0'))).toBe(true);
  });

  it.each([
    ['an http: upstream', { baseUrl: 'http://localhost:1/v1' }, /must be an https: URL/],
    [
      'assertCaller without callerAssertion',
      { baseUrl: 'https://localhost:1/v1', proxy: { assertCaller: true } },
      /needs "callerAssertion"/,
    ],
    [
      'forwarding Authorization',
      { baseUrl: 'https://localhost:1/v1', proxy: { requestHeaders: ['Authorization'] } },
      /must not list "authorization"/,
    ],
  ])('the app refuses to start with %s', async (_name, upstream, message) => {
    @Module({ imports: [UpstreamModule.forRoot({ upstreams: { u: upstream } })] })
    class BadModule {}
    await expect(
      NestFactory.createApplicationContext(BadModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow(message);
  });

  it('forRootAsync: the factory must configure exactly the declared names', async () => {
    @Module({
      imports: [
        UpstreamModule.forRootAsync({
          upstreamNames: ['llm'],
          useFactory: () => ({ upstreams: { other: { baseUrl: 'https://localhost:1/v1' } } }),
        }),
      ],
    })
    class AsyncModule {}
    await expect(
      NestFactory.createApplicationContext(AsyncModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow(/"upstreamNames" \(llm\) must match/);
  });

  it('closing the app closes the upstream pools', async () => {
    @Module({
      imports: [
        UpstreamModule.forRoot({
          upstreams: {
            u: {
              baseUrl: `${standin.url}/v1`,
              ca: { file: pki.ca.cert },
              clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
              apiKey: { file: join(pki.dir, 'upstream-key') },
            },
          },
        }),
      ],
    })
    class SmallModule {}
    const ctx = await NestFactory.createApplicationContext(SmallModule, { logger: false });
    const u = ctx.get<UpstreamClient>(upstreamClientToken('u'));
    const res = await u.request({ path: 'models' });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    await ctx.close();
    await expect(u.request({ path: 'models' })).rejects.toMatchObject({ name: 'ShieldError' });
  });

  it('no log line holds a key, a token, an assertion or a prompt', () => {
    const all = logger.lines.join('\n');
    expect(all.length).toBeGreaterThan(0);
    for (const secret of [UPSTREAM_KEY, CALLER_TOKEN, SECRET_PROMPT, 'eyJ'])
      expect(all).not.toContain(secret);
  });
});
