/**
 * The same proxy behind Nest's Fastify adapter: the reply is hijacked and the stream written to
 * the raw response, chunk by chunk; the caller's Authorization still never leaves.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Module, Post, Req, Res } from '@nestjs/common';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  InjectUpstreamProxy,
  UpstreamModule,
  type ProxyInboundRequest,
  type ProxyOutboundResponse,
  type UpstreamProxy,
} from '@inference-shield/upstream';
import { createLlmStandin, type LlmStandin } from '../../apps/llm-standin/src/llm-standin.server.js';
import { startApp, type TestApp } from '../support/harness.js';
import { testPki } from './upstream-fixtures.js';

const KEY = 'sk-fastify-upstream-key-4410';

@Controller('v1')
class FastifyProxyController {
  constructor(@InjectUpstreamProxy('llm') private readonly llm: UpstreamProxy) {}

  @Post('chat/completions')
  chat(@Req() req: ProxyInboundRequest, @Res() reply: ProxyOutboundResponse): Promise<void> {
    return this.llm.forward(req, reply, { path: 'chat/completions' });
  }
}

let pki: Awaited<ReturnType<typeof testPki>>;
let standin: LlmStandin;
let app: TestApp;
let caller: Agent;
let base: string;

beforeAll(async () => {
  pki = await testPki();
  const keyFile = join(pki.dir, 'key');
  writeFileSync(keyFile, KEY, { mode: 0o600 });
  standin = await createLlmStandin({
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
    port: 0,
    apiKeys: [KEY],
    recordRequests: true,
  });

  @Module({
    imports: [
      UpstreamModule.forRoot({
        upstreams: {
          llm: {
            baseUrl: `${standin.url}/v1`,
            ca: { file: pki.ca.cert },
            clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
            apiKey: { file: keyFile },
            proxy: { maxRequestBodyBytes: 64 * 1024 },
          },
        },
      }),
    ],
    controllers: [FastifyProxyController],
  })
  class AppModule {}

  app = await startApp(AppModule, { pki, adapter: 'fastify' });
  base = app.url;
  caller = new Agent({ connect: { ca: pki.ca.certPem } });
});

afterAll(async () => {
  await caller?.close();
  await app?.close();
  await standin?.close();
  pki?.cleanup();
});

it('streams a completion through Fastify, with our key upstream and not the caller’s', async () => {
  const before = standin.requests.length;
  const res = await request(`${base}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: caller,
    headers: { 'content-type': 'application/json', authorization: 'Bearer caller-token-fastify' },
    body: JSON.stringify({
      model: 'standin-chat',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      max_tokens: 5,
    }),
  });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
  const text = await res.body.text();
  expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  expect(text.match(/"content":"/g)?.length).toBe(6); // role chunk + 5 tokens
  expect(standin.requests.slice(before)[0]?.headers.authorization).toBe(`Bearer ${KEY}`);
});

it('refusals are written on the raw reply (413 before the upstream is contacted)', async () => {
  const before = standin.stats.requests;
  const res = await request(`${base}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: caller,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'standin-chat',
      messages: [{ role: 'user', content: 'x'.repeat(100 * 1024) }],
    }),
  });
  expect(res.statusCode).toBe(413);
  expect(await res.body.json()).toMatchObject({ code: 'ERR_BODY_TOO_LARGE' });
  expect(standin.stats.requests).toBe(before);
});
