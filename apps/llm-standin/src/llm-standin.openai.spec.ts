import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import {
  createLlmStandin,
  type LlmStandin,
  type RecordedRequest,
  type StandinCancellation,
  type StandinStreamDone,
} from './llm-standin.server.js';
import { complete, countPromptTokens, LONG_COMPLETION_TOKENS } from './standin-model.js';

// The stand-in against the real `openai` SDK (6.x) over mutual TLS: the Responses API streamed and
// not, chat usage as OpenAI sends it, OpenAI's 404 and 429 answers, and what a test can observe.

const API_KEY = 'sk-standin-test-key-0001';
const root = mkdtempSync(join(tmpdir(), 'llm-standin-sdk-'));
let pki: TestPki;
let standin: LlmStandin;
let agent: Agent;
let openai: OpenAI;

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  standin = await createLlmStandin({
    port: 0,
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
    apiKeys: [API_KEY],
    recordRequests: true,
  });
  agent = new Agent({
    connect: { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem },
  });
  openai = new OpenAI({
    baseURL: `${standin.url}/v1`,
    apiKey: API_KEY,
    maxRetries: 0,
    fetch: ((url: string, init?: RequestInit) =>
      undiciFetch(url, { ...(init as object), dispatcher: agent })) as never,
  });
});

afterAll(async () => {
  await standin.close();
  await agent.close();
  rmSync(root, { recursive: true, force: true });
});

/** The error the SDK throws for a call, or undefined. */
async function failure(call: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await call;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error('the call succeeded');
}

const INPUT = 'Is the channel encrypted?';
const MESSAGES = [{ role: 'user', content: INPUT }];

describe('Responses API through the openai SDK', () => {
  it('answers non-streamed, with output_text and usage', async () => {
    const res = await openai.responses.create({ model: 'standin-chat', input: INPUT });
    const expected = complete('standin-chat', MESSAGES);
    expect(res.object).toBe('response');
    expect(res.status).toBe('completed');
    expect(res.output_text).toBe(expected.tokens.join(' '));
    expect(res.usage).toEqual({
      input_tokens: countPromptTokens(MESSAGES),
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: expected.tokens.length,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: countPromptTokens(MESSAGES) + expected.tokens.length,
    });
  });

  it('reads instructions and input items as the chat model reads messages', async () => {
    const res = await openai.responses.create({
      model: 'standin-chat',
      instructions: 'Be brief.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: INPUT }] }],
    });
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: INPUT },
    ];
    expect(res.output_text).toBe(complete('standin-chat', messages).tokens.join(' '));
    expect(res.usage?.input_tokens).toBe(countPromptTokens(messages));
  });

  it('streams OpenAI’s event sequence, deltas adding up to the text, usage at the end', async () => {
    const stream = await openai.responses.create({ model: 'standin-chat', input: INPUT, stream: true });
    const types: string[] = [];
    let text = '';
    let usage: unknown;
    const sequence: number[] = [];
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') usage = event.response.usage;
    }
    const expected = complete('standin-chat', MESSAGES);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...expected.tokens.map(() => 'response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(sequence).toEqual(types.map((_, i) => i));
    expect(text).toBe(expected.tokens.join(' '));
    expect(usage).toMatchObject({
      input_tokens: countPromptTokens(MESSAGES),
      output_tokens: expected.tokens.length,
      total_tokens: countPromptTokens(MESSAGES) + expected.tokens.length,
    });
  });

  it('the SDK’s stream helper assembles the same final response', async () => {
    const final = await openai.responses.stream({ model: 'standin-chat', input: INPUT }).finalResponse();
    expect(final.output_text).toBe(complete('standin-chat', MESSAGES).tokens.join(' '));
    expect(final.usage?.output_tokens).toBe(complete('standin-chat', MESSAGES).tokens.length);
  });

  it('stops at max_output_tokens as OpenAI does: status incomplete, event response.incomplete', async () => {
    const res = await openai.responses.create({ model: 'standin-chat', input: INPUT, max_output_tokens: 16 });
    expect(res.status).toBe('incomplete');
    expect(res.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(res.usage?.output_tokens).toBe(16);
    const stream = await openai.responses.create({
      model: 'standin-chat',
      input: INPUT,
      max_output_tokens: 16,
      stream: true,
    });
    let last = '';
    for await (const event of stream) last = event.type;
    expect(last).toBe('response.incomplete');
  });

  it.each([
    ['no input', {}, 'input'],
    ['an empty input array', { input: [] }, 'input'],
    ['a max_output_tokens of 0', { input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
  ])('refuses %s with a 400 naming the field', async (_name, fields, param) => {
    const err = await failure(openai.responses.create({ model: 'standin-chat', ...fields } as never));
    expect(err.status).toBe(400);
    expect(err.param).toBe(param);
  });
});

describe('chat completions usage, as OpenAI sends it', () => {
  async function chunks(includeUsage: boolean | undefined) {
    const stream = await openai.chat.completions.create({
      model: 'standin-chat',
      messages: [{ role: 'user', content: INPUT }],
      stream: true,
      ...(includeUsage !== undefined ? { stream_options: { include_usage: includeUsage } } : {}),
    });
    const all = [];
    for await (const chunk of stream) all.push(chunk);
    return all;
  }

  it.each([undefined, false])('streamed with include_usage %s: no usage chunk', async (include) => {
    const all = await chunks(include);
    expect(all.some((c) => 'usage' in c)).toBe(false);
  });

  it('streamed with include_usage: usage null on each chunk, then one chunk with no choices and usage', async () => {
    const all = await chunks(true);
    const last = all.at(-1);
    expect(last?.choices).toEqual([]);
    const n = complete('standin-chat', MESSAGES).tokens.length;
    expect(last?.usage).toEqual({
      prompt_tokens: countPromptTokens(MESSAGES),
      completion_tokens: n,
      total_tokens: countPromptTokens(MESSAGES) + n,
    });
    expect(all.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('non-streamed answers carry usage', async () => {
    const res = await openai.chat.completions.create({
      model: 'standin-chat',
      messages: [{ role: 'user', content: INPUT }],
    });
    expect(res.usage?.total_tokens).toBeGreaterThan(0);
  });
});

describe('OpenAI’s error answers', () => {
  it.each([
    [
      'chat',
      () => openai.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] }),
    ],
    ['responses', () => openai.responses.create({ model: 'gpt-nope', input: 'x' })],
    ['embeddings', () => openai.embeddings.create({ model: 'gpt-nope', input: 'x' })],
  ])('an unknown model on %s is 404 model_not_found, param null', async (_name, call) => {
    const err = await failure(call());
    expect(err.status).toBe(404);
    expect(err.error).toEqual({
      message: 'The model `gpt-nope` does not exist or you do not have access to it.',
      type: 'invalid_request_error',
      param: null,
      code: 'model_not_found',
    });
  });

  it('the 429 mode answers retry-after and rate_limit_exceeded, for the models named, until switched off', async () => {
    standin.setRateLimited({ models: ['standin-chat'], retryAfterSeconds: 7 });
    try {
      const err = await failure(openai.responses.create({ model: 'standin-chat', input: 'x' }));
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect(err.headers?.get('retry-after')).toBe('7');
      expect(err.code).toBe('rate_limit_exceeded');
      expect(err.type).toBe('requests');
      const chat = await failure(
        openai.chat.completions.create({ model: 'standin-chat', messages: [{ role: 'user', content: 'x' }] }),
      );
      expect(chat.status).toBe(429);
      // Another model is not over its limit.
      expect(
        (await openai.responses.create({ model: 'standin-long', input: 'x', max_output_tokens: 3 })).status,
      ).toBe('incomplete');
    } finally {
      standin.setRateLimited(undefined);
    }
    expect((await openai.responses.create({ model: 'standin-chat', input: 'x' })).status).toBe('completed');
  });

  it('the 429 mode can be on from the start, for every model', async () => {
    const limited = await createLlmStandin({
      port: 0,
      cert: pki.server.cert,
      key: pki.server.key,
      ca: pki.ca.cert,
      apiKeys: [API_KEY],
      rateLimited: { models: ['*'] },
    });
    try {
      const client = openai.withOptions({ baseURL: `${limited.url}/v1` });
      const err = await failure(client.embeddings.create({ model: 'standin-embed', input: 'x' }));
      expect(err.status).toBe(429);
      expect(err.headers?.get('retry-after')).toBe('1');
      expect(limited.stats.rateLimited).toBe(1);
      // Listing models is not a model call: still answered.
      expect((await client.models.list()).data.length).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });

  it.each([
    [{ models: [] }, /"rateLimited.models"/],
    [{ models: ['standin-chat'], retryAfterSeconds: -1 }, /retryAfterSeconds/],
    [{ models: ['standin-chat'], retry: 1 }, /unknown option "retry"/],
  ])('refuses rateLimited %j at start-up', async (rateLimited, message) => {
    await expect(
      createLlmStandin({
        port: 0,
        cert: pki.server.cert,
        key: pki.server.key,
        ca: pki.ca.cert,
        apiKeys: [API_KEY],
        rateLimited: rateLimited as never,
      }),
    ).rejects.toThrow(message);
  });
});

describe('what a test observes from outside', () => {
  it('the long model streams many chunks; a client that stops is seen as a cancel, not a done', async () => {
    // A pause per token, so the whole answer cannot be in the socket buffers before the client stops.
    const slow = await createLlmStandin({
      port: 0,
      cert: pki.server.cert,
      key: pki.server.key,
      ca: pki.ca.cert,
      apiKeys: [API_KEY],
      tokenDelayMs: 2,
    });
    try {
      const cancelled = new Promise<StandinCancellation>((resolve) => slow.events.once('cancel', resolve));
      let done: StandinStreamDone | undefined;
      slow.events.on('done', (d) => {
        done = d;
      });
      const controller = new AbortController();
      const stream = await openai
        .withOptions({ baseURL: `${slow.url}/v1` })
        .responses.create(
          { model: 'standin-long', input: INPUT, stream: true },
          { signal: controller.signal },
        );
      let deltas = 0;
      try {
        for await (const event of stream) {
          if (event.type === 'response.output_text.delta' && ++deltas === 20) controller.abort();
        }
      } catch (err) {
        expect((err as Error).name).toMatch(/Abort/);
      }
      const cancel = await cancelled;
      expect(cancel.path).toBe('/v1/responses');
      expect(cancel.tokensSent).toBeGreaterThanOrEqual(20);
      expect(cancel.tokensSent).toBeLessThan(LONG_COMPLETION_TOKENS);
      expect(done).toBeUndefined();
      expect(slow.stats.cancelled).toBe(1);
    } finally {
      await slow.close();
    }
  });

  it('a stream sent in full is a done event with its token count', async () => {
    const done = new Promise<StandinStreamDone>((resolve) => standin.events.once('done', resolve));
    const stream = await openai.chat.completions.create({
      model: 'standin-long',
      messages: [{ role: 'user', content: INPUT }],
      stream: true,
    });
    let n = 0;
    for await (const chunk of stream) if (chunk.choices[0]?.delta.content) n++;
    expect(n).toBe(LONG_COMPLETION_TOKENS);
    expect(await done).toEqual({ path: '/v1/chat/completions', tokensSent: LONG_COMPLETION_TOKENS });
  });

  it('each request’s headers, as an event and in the record', async () => {
    const seen = new Promise<RecordedRequest>((resolve) => standin.events.once('request', resolve));
    await openai.models.list({ headers: { 'x-test-marker': 'm-1' } });
    const request = await seen;
    expect(request).toMatchObject({ method: 'GET', path: '/v1/models' });
    expect(request.headers['x-test-marker']).toBe('m-1');
    expect(standin.requests.at(-1)).toEqual(request);
  });

  it('models and embeddings keep working; the long model is listed', async () => {
    expect((await openai.models.list()).data.map((m) => m.id)).toEqual([
      'standin-chat',
      'standin-embed',
      'standin-long',
    ]);
    const emb = await openai.embeddings.create({ model: 'standin-embed', input: ['a', 'b'] });
    expect(emb.data).toHaveLength(2);
  });
});
