/**
 * The OpenAI SDK (6.x), unchanged, through `UpstreamClient.fetch` against the stand-in hosted LLM
 * over mTLS: completion, streamed completion, embeddings, errors and cancellation.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { createLocalJWKSet, jwtVerify } from 'jose';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createUpstreamRegistry,
  type UpstreamClient,
  type UpstreamRegistry,
} from '@inference-shield/upstream';
import { createLlmStandin, type LlmStandin } from '../../apps/llm-standin/src/llm-standin.server.js';
import { complete, countPromptTokens, embed } from '../../apps/llm-standin/src/standin-model.js';
import { deferred, testPki } from './upstream-fixtures.js';

const API_KEY = 'sk-standin-test-key-0001';

let pki: Awaited<ReturnType<typeof testPki>>;
let standin: LlmStandin;
let slow: LlmStandin;
let registry: UpstreamRegistry;
let llm: UpstreamClient;
let slowLlm: UpstreamClient;

beforeAll(async () => {
  pki = await testPki();
  const keyFile = join(pki.dir, 'llm-api-key');
  writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
  const serverFiles = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert };
  standin = await createLlmStandin({ ...serverFiles, port: 0, apiKeys: [API_KEY], recordRequests: true });
  slow = await createLlmStandin({ ...serverFiles, port: 0, apiKeys: [API_KEY], tokenDelayMs: 20 });
  const upstream = (url: string) => ({
    baseUrl: `${url}/v1`,
    ca: { file: pki.ca.cert },
    clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
    apiKey: { file: keyFile },
  });
  registry = await createUpstreamRegistry({
    upstreams: { llm: upstream(standin.url), slow: upstream(slow.url) },
  });
  llm = registry.client('llm');
  slowLlm = registry.client('slow');
});

afterAll(async () => {
  await registry?.close();
  await standin?.close();
  await slow?.close();
  pki?.cleanup();
});

function sdk(client: UpstreamClient): OpenAI {
  // The real key lives in the upstream config; the SDK's is replaced by the client.
  return new OpenAI({
    baseURL: client.baseUrl,
    apiKey: 'placeholder-replaced-by-upstream',
    fetch: client.fetch,
    maxRetries: 0,
  });
}

describe('OpenAI SDK through UpstreamClient.fetch', () => {
  it('lists models and completes a chat, with exact usage', async () => {
    const openai = sdk(llm);
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toContain('standin-chat');

    const messages = [{ role: 'user' as const, content: 'Is the channel encrypted?' }];
    const res = await openai.chat.completions.create({ model: 'standin-chat', messages });
    const expected = complete('standin-chat', messages);
    expect(res.choices[0]?.message.content).toBe(expected.tokens.join(' '));
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(res.usage).toEqual({
      prompt_tokens: countPromptTokens(messages),
      completion_tokens: expected.tokens.length,
      total_tokens: countPromptTokens(messages) + expected.tokens.length,
    });
    // Deterministic: the same prompt, the same answer.
    const again = await openai.chat.completions.create({ model: 'standin-chat', messages });
    expect(again.choices[0]?.message.content).toBe(res.choices[0]?.message.content);
  });

  it('sends the configured key, not the SDK one, and the stand-in saw a client certificate', async () => {
    const before = standin.requests.length;
    await sdk(llm).models.list();
    const seen = standin.requests.slice(before);
    expect(seen.length).toBe(1);
    expect(seen[0]?.headers.authorization).toBe(`Bearer ${API_KEY}`);
  });

  it('streams: the first chunk arrives before the stand-in has written the last token', async () => {
    const openai = sdk(slowLlm);
    const messages = [{ role: 'user' as const, content: 'stream please' }];
    const stream = await openai.chat.completions.create({
      model: 'standin-chat',
      messages,
      stream: true,
      max_tokens: 40,
      stream_options: { include_usage: true },
    });
    const completedBefore = slow.stats.completions;
    let first: number | undefined;
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      // The stand-in counts a completion only after its last token: at the first chunk it has not.
      if (first === undefined && chunk.choices[0]?.delta.content)
        first = slow.stats.completions - completedBefore;
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(first).toBe(0);
    expect(slow.stats.completions - completedBefore).toBe(1);
    expect(text).toBe(complete('standin-chat', messages, 40).tokens.join(' '));
    expect(usage?.completion_tokens).toBe(40);
  });

  it('creates embeddings (SDK default base64, and float)', async () => {
    const openai = sdk(llm);
    const b64 = await openai.embeddings.create({ model: 'standin-embed', input: ['hello world', 'bye'] });
    const float = await openai.embeddings.create({
      model: 'standin-embed',
      input: 'hello world',
      encoding_format: 'float',
    });
    const expected = Array.from(embed('hello world', 8));
    expect(b64.data[0]?.embedding).toEqual(expected);
    expect(float.data[0]?.embedding).toEqual(expected);
    expect(b64.data).toHaveLength(2);
    expect(b64.usage.prompt_tokens).toBe(3);
  });

  it('the stand-in answers a wrong API key with OpenAI’s 401, without echoing it', async () => {
    const body = await rawRequest(
      standin.port,
      'GET /v1/models HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer sk-wrong-key-123\r\nconnection: close\r\n\r\n',
    );
    expect(body).toMatch(/^HTTP\/1\.1 401/);
    expect(body).toContain('"code":"invalid_api_key"');
    expect(body).not.toContain('sk-wrong-key-123');
  });

  it('a typed code is reachable through the SDK’s APIConnectionError', async () => {
    // An upstream whose certificate is for another host: the SDK wraps our ShieldError as cause.
    const reg = await createUpstreamRegistry({
      upstreams: {
        bad: {
          baseUrl: `https://localhost:${standin.port}/v1`,
          ca: { file: pki.otherCa.ca.cert },
          clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
        },
      },
    });
    try {
      const err = await sdk(reg.client('bad'))
        .models.list()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
      expect((err as { cause?: { code?: string } }).cause?.code).toBe('ERR_UPSTREAM_CERT_UNTRUSTED');
    } finally {
      await reg.close();
    }
  });

  it('refuses a URL outside the upstream (SDK with another baseURL) before connecting', async () => {
    const before = llm.stats();
    const openai = new OpenAI({
      baseURL: 'https://evil.example/v1',
      apiKey: 'x',
      fetch: llm.fetch,
      maxRetries: 0,
    });
    const err = await openai.models.list().catch((e: unknown) => e);
    expect((err as { cause?: { code?: string } }).cause?.code).toBe('ERR_UPSTREAM_ORIGIN_MISMATCH');
    expect(llm.stats().handshakes).toBe(before.handshakes);
    expect(llm.stats().refused).toBe(before.refused + 1);
  });

  it('a caller abort cancels the upstream generation (the stand-in sees it)', async () => {
    const openai = sdk(slowLlm);
    const cancelled = deferred<{ path: string; tokensSent: number }>();
    slow.events.once('cancel', cancelled.resolve);
    const ac = new AbortController();
    const stream = await openai.chat.completions.create(
      {
        model: 'standin-chat',
        messages: [{ role: 'user', content: 'a long story' }],
        stream: true,
        max_tokens: 4000,
      },
      { signal: ac.signal },
    );
    let chunks = 0;
    const consumed = (async () => {
      for await (const _ of stream) {
        if (++chunks === 3) ac.abort();
      }
    })();
    await expect(consumed).rejects.toThrow();
    const seen = await cancelled.promise;
    expect(seen.path).toBe('/v1/chat/completions');
    expect(seen.tokensSent).toBeLessThan(4000);
    expect(llm.stats().errors.ERR_UPSTREAM_TIMEOUT ?? 0).toBe(0);
  });

  it('callerAssertionFor: an assertion sent with an SDK call verifies with the JWKS', async () => {
    const reg = await createUpstreamRegistry({
      upstreams: {
        llm: {
          baseUrl: `${standin.url}/v1`,
          ca: { file: pki.ca.cert },
          clientCertificate: { cert: pki.client.cert, key: pki.client.key, watch: false },
          apiKey: { file: join(pki.dir, 'llm-api-key') },
        },
      },
      callerAssertion: {
        issuer: 'spiffe://shield.local/svc',
        caller: (req) => (req as { who?: { subject: string } }).who,
      },
    });
    try {
      const a = await reg.callerAssertionFor({ who: { subject: 'bob' } }, 'llm');
      expect(a?.header).toBe('x-shield-caller-assertion');
      const before = standin.requests.length;
      await sdk(reg.client('llm')).models.list({ headers: { [a?.header ?? 'x']: a?.value ?? '' } });
      const sent = standin.requests.slice(before)[0]?.headers['x-shield-caller-assertion'];
      const { payload } = await jwtVerify(
        String(sent),
        createLocalJWKSet(reg.callerAssertionJwks() as never),
        {
          issuer: 'spiffe://shield.local/svc',
          audience: new URL(standin.url).origin,
        },
      );
      expect(payload.sub).toBe('bob');
      await expect(reg.callerAssertionFor({}, 'llm')).rejects.toMatchObject({
        code: 'ERR_CALLER_NOT_ALLOWED',
      });
      expect(await registry.callerAssertionFor({}, 'llm')).toBeUndefined();
    } finally {
      await reg.close();
    }
  });

  it('reuses pooled connections: handshakes stay at the pool size', async () => {
    const before = llm.stats();
    const openai = sdk(llm);
    for (let i = 0; i < 20; i++) await openai.models.list();
    const after = llm.stats();
    expect(after.requests - before.requests).toBe(20);
    expect(after.handshakes - before.handshakes).toBeLessThanOrEqual(1);
  });
});

describe('stand-in mTLS', () => {
  it('refuses a handshake without a client certificate', async () => {
    const err = await new Promise<Error | undefined>((resolve) => {
      const socket = tls.connect({
        port: standin.port,
        host: '127.0.0.1',
        servername: 'localhost',
        ca: readFileSync(pki.ca.cert),
      });
      socket.on('secureConnect', () => socket.write('GET /v1/models HTTP/1.1\r\nhost: localhost\r\n\r\n'));
      socket.on('data', () => resolve(undefined));
      socket.on('error', (e) => resolve(e));
      socket.on('close', () => resolve(new Error('closed without answer')));
    });
    expect(err).toBeInstanceOf(Error);
    expect(String((err as NodeJS.ErrnoException).code ?? err?.message)).toMatch(
      /CERTIFICATE_REQUIRED|ECONNRESET|closed/,
    );
  });

  it('refuses a client certificate from another CA', async () => {
    const err = await new Promise<Error | undefined>((resolve) => {
      const socket = tls.connect({
        port: standin.port,
        host: '127.0.0.1',
        servername: 'localhost',
        ca: readFileSync(pki.ca.cert),
        cert: readFileSync(pki.otherCa.client.cert),
        key: readFileSync(pki.otherCa.client.key),
      });
      socket.on('secureConnect', () => socket.write('GET /v1/models HTTP/1.1\r\nhost: localhost\r\n\r\n'));
      socket.on('data', () => resolve(undefined));
      socket.on('error', (e) => resolve(e));
      socket.on('close', () => resolve(new Error('closed without answer')));
    });
    expect(err).toBeInstanceOf(Error);
  });
});

function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: readFileSync(pki.ca.cert),
      cert: readFileSync(pki.client.cert),
      key: readFileSync(pki.client.key),
    });
    let out = '';
    socket.on('secureConnect', () => socket.write(request));
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}
