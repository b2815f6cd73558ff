/**
 * #17 §1: the relay's GenAI client span, end to end, with a real SDK registered (in-memory span
 * exporter, the async-hooks context manager, the W3C propagator) before the app is created. The
 * relay fixture app (identity, an upstream over mTLS to the stand-in hosted LLM, the relay) is
 * called through the real `openai` SDK as an mTLS workload: a chat completion, a streamed one, a
 * Responses call, embeddings, an unknown model, a budget refusal and an upstream 429.
 *
 * Each call has one span `{operation} {catalogue model}` of kind CLIENT with the GenAI attributes
 * (provider, request and response model, token usage, finish reasons; `error.type` on failure);
 * the upstream call's `shield.upstream` span is its child, and the stand-in got that child's
 * `traceparent`. No span attribute or name holds the prompt or an output.
 */
import 'reflect-metadata';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CaptureSink,
  relayAppModule,
  sdk,
  startRelayApp,
  startStandin,
  workload,
  type StandinSetup,
} from '../llm-relay/support/relay-fixture.js';
import type { TestApp } from '../support/harness.js';

const spans = new InMemorySpanExporter();
// Registered before any app exists, as an application does (docs/telemetry.md).
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const PROMPT = 'PROMPT-SENTINEL-51ab which cipher suites are offered?';
let hosted: StandinSetup;
let app: TestApp;
let openai: OpenAI & { close(): Promise<void> };
const outputs: string[] = [];

beforeAll(async () => {
  hosted = await startStandin({ rateLimited: { models: ['standin-long'] } });
  app = await startRelayApp(
    relayAppModule({
      upstream: { upstreams: { llm: hosted.upstream() } },
      relay: {
        upstreams: { llm: {} },
        models: {
          'chat-fast': { upstream: 'llm', model: 'standin-chat', endpoints: ['chat', 'responses'] },
          'chat-once': { upstream: 'llm', model: 'standin-chat', endpoints: ['chat'] },
          'chat-limited': { upstream: 'llm', model: 'standin-long', endpoints: ['chat'] },
          embed: { upstream: 'llm', model: 'standin-embed', endpoints: ['embeddings'] },
          'cut-chat': { upstream: 'llm', model: 'standin-chat', endpoints: ['chat'] },
        },
        access: { '*': [{}] },
        budgets: {
          perPrincipal: { requestsPerMinute: 1000, tokensPerMinute: 1_000_000 },
          perModel: { 'chat-once': { requestsPerMinute: 1 }, 'cut-chat': { tokensPerMinute: 150 } },
          streamBlockTokens: 32,
        },
      },
      audit: new CaptureSink(),
    }),
    hosted.pki,
  );
  openai = sdk(app, { client: await workload(hosted.pki, 'alice') });
}, 60_000);

afterAll(async () => {
  await openai?.close();
  await app?.close();
  await hosted?.standin.close();
});

/** The spans finished since `from`, by name. */
function newSpans(from: number): ReadableSpan[] {
  return spans.getFinishedSpans().slice(from);
}

function only(list: ReadableSpan[], name: string): ReadableSpan {
  const found = list.filter((s) => s.name === name);
  expect(found, `spans named ${name}: ${list.map((s) => s.name).join(', ')}`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

/** The span's parent span id (SDK 2.x: `parentSpanContext`; 1.x: `parentSpanId`). */
function parentOf(span: ReadableSpan): string | undefined {
  const s = span as ReadableSpan & { parentSpanId?: string; parentSpanContext?: { spanId: string } };
  return s.parentSpanContext?.spanId ?? s.parentSpanId;
}

function expectUpstreamChild(list: ReadableSpan[], parent: ReadableSpan): ReadableSpan {
  const upstream = only(list, 'shield.upstream');
  expect(parentOf(upstream)).toBe(parent.spanContext().spanId);
  expect(upstream.spanContext().traceId).toBe(parent.spanContext().traceId);
  return upstream;
}

describe('the relay GenAI client span', () => {
  it('a chat completion: "chat chat-fast", CLIENT, GenAI attributes, the upstream span its child', async () => {
    const from = spans.getFinishedSpans().length;
    const answer = await openai.chat.completions.create({
      model: 'chat-fast',
      messages: [{ role: 'user', content: PROMPT }],
    });
    outputs.push(answer.choices[0]?.message.content ?? '');
    const list = newSpans(from);
    const span = only(list, 'chat chat-fast');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'chat-fast',
      'gen_ai.response.model': 'standin-chat',
      'gen_ai.usage.input_tokens': answer.usage?.prompt_tokens,
      'gen_ai.usage.output_tokens': answer.usage?.completion_tokens,
      'gen_ai.response.finish_reasons': ['stop'],
      'shield.upstream': 'llm',
      'server.address': 'localhost',
      'server.port': hosted.standin.port,
    });
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    const upstream = expectUpstreamChild(list, span);
    // The stand-in received the child's context as traceparent.
    const sent = hosted.standin.requests.at(-1)?.headers['traceparent'];
    expect(String(sent).split('-').slice(1, 3)).toEqual([
      upstream.spanContext().traceId,
      upstream.spanContext().spanId,
    ]);
  });

  it('a streamed chat completion: one span, ended after the stream, with the usage and finish reason', async () => {
    const from = spans.getFinishedSpans().length;
    const stream = await openai.chat.completions.create({
      model: 'chat-fast',
      messages: [{ role: 'user', content: PROMPT }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    outputs.push(text);
    // The span ends once the relay has settled the call, just after the caller's stream ended.
    const span = await vi.waitFor(() => only(newSpans(from), 'chat chat-fast'));
    const list = newSpans(from);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'chat-fast',
      'gen_ai.response.model': 'standin-chat',
      'gen_ai.usage.input_tokens': usage?.prompt_tokens,
      'gen_ai.usage.output_tokens': usage?.completion_tokens,
      'gen_ai.response.finish_reasons': ['stop'],
    });
    expect(span.attributes['error.type']).toBeUndefined();
    const upstream = expectUpstreamChild(list, span);
    // The upstream span ends at the response headers; the GenAI span covers the whole stream.
    const end = (s: ReadableSpan): number => s.endTime[0] * 1e9 + s.endTime[1];
    expect(end(span)).toBeGreaterThanOrEqual(end(upstream));
  });

  it('the Responses API: a chat operation, finish reason from its status', async () => {
    const from = spans.getFinishedSpans().length;
    const answer = await openai.responses.create({ model: 'chat-fast', input: PROMPT });
    outputs.push(answer.output_text);
    const span = only(newSpans(from), 'chat chat-fast');
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.usage.input_tokens': answer.usage?.input_tokens,
      'gen_ai.usage.output_tokens': answer.usage?.output_tokens,
      'gen_ai.response.finish_reasons': ['completed'],
    });
  });

  it('embeddings: "embeddings embed", no finish reason', async () => {
    const from = spans.getFinishedSpans().length;
    const answer = await openai.embeddings.create({ model: 'embed', input: PROMPT });
    const list = newSpans(from);
    const span = only(list, 'embeddings embed');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'embeddings',
      'gen_ai.request.model': 'embed',
      'gen_ai.response.model': 'standin-embed',
      'gen_ai.usage.input_tokens': answer.usage.prompt_tokens,
    });
    expect(span.attributes['gen_ai.response.finish_reasons']).toBeUndefined();
    expectUpstreamChild(list, span);
  });

  it('an unknown model: span "chat" without the caller\'s model name, error.type, no upstream call', async () => {
    const from = spans.getFinishedSpans().length;
    await expect(
      openai.chat.completions.create({
        model: 'MODEL-SENTINEL-y',
        messages: [{ role: 'user', content: PROMPT }],
      }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const list = newSpans(from);
    const span = only(list, 'chat');
    expect(span.attributes['gen_ai.request.model']).toBeUndefined();
    expect(span.attributes['error.type']).toBe('ERR_LLM_MODEL_NOT_FOUND');
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'ERR_LLM_MODEL_NOT_FOUND' });
    expect(list.filter((s) => s.name === 'shield.upstream')).toEqual([]);
    expect(JSON.stringify(list.map((s) => [s.name, s.attributes]))).not.toContain('MODEL-SENTINEL-y');
  });

  it('a budget refusal: error.type is the budget code, no upstream call', async () => {
    const once = { model: 'chat-once', messages: [{ role: 'user' as const, content: PROMPT }] };
    outputs.push((await openai.chat.completions.create(once)).choices[0]?.message.content ?? '');
    const from = spans.getFinishedSpans().length;
    await expect(openai.chat.completions.create(once)).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    const list = newSpans(from);
    expect(only(list, 'chat chat-once').attributes['error.type']).toBe('ERR_LLM_REQUESTS_EXCEEDED');
    expect(list.filter((s) => s.name === 'shield.upstream')).toEqual([]);
  });

  it('the upstream refuses (429): error.type on the GenAI span, the status on its upstream child', async () => {
    const from = spans.getFinishedSpans().length;
    await expect(
      openai.chat.completions.create({
        model: 'chat-limited',
        messages: [{ role: 'user', content: PROMPT }],
      }),
    ).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    const list = newSpans(from);
    const span = only(list, 'chat chat-limited');
    expect(span.attributes['error.type']).toBe('ERR_LLM_UPSTREAM_REFUSED');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(expectUpstreamChild(list, span).attributes['http.response.status_code']).toBe(429);
  });

  it('a stream cut by its budget: finish reason "length", error.type the budget code, estimated usage', async () => {
    // Budget windows are whole UTC minutes: start with time to spare in this one (as relay-sdk does).
    const leftInMinuteMs = 60_000 - (Date.now() % 60_000);
    if (leftInMinuteMs < 15_000) await new Promise((r) => setTimeout(r, leftInMinuteMs + 100));
    const from = spans.getFinishedSpans().length;
    const stream = await openai.chat.completions.create({
      model: 'cut-chat',
      messages: [{ role: 'user', content: `${PROMPT} tell me a long story` }],
      max_tokens: 100,
      stream: true,
    });
    let text = '';
    const finishes: string[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
    }
    expect(finishes).toEqual(['length']);
    outputs.push(text);
    const span = await vi.waitFor(() => only(newSpans(from), 'chat cut-chat'));
    expect(span.attributes).toMatchObject({
      'gen_ai.response.finish_reasons': ['length'],
      'error.type': 'ERR_LLM_TOKENS_EXCEEDED',
      'shield.llm.usage.estimated': true,
    });
    expect(span.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
  }, 30_000);

  it('no span name or attribute holds the prompt or an output', () => {
    const texts = [PROMPT, ...outputs.filter((o) => o.length >= 8)];
    expect(texts.length).toBeGreaterThanOrEqual(4);
    const all = spans.getFinishedSpans();
    expect(all.length).toBeGreaterThan(8);
    const strings = all.flatMap((s) => [
      s.name,
      s.status.message ?? '',
      ...Object.entries(s.attributes).flatMap(([k, v]) => [k, ...(Array.isArray(v) ? v : [v]).map(String)]),
      ...s.events.map((e) => e.name),
    ]);
    const leaked = texts.filter((t) =>
      strings.some((s) => s.includes(t) || (s.length >= 16 && t.includes(s))),
    );
    expect(leaked).toEqual([]);
    // Control: the same scan finds a planted output.
    const planted = [...strings, `answer: ${texts[1] ?? ''}`];
    expect(texts.filter((t) => planted.some((s) => s.includes(t)))).toContain(texts[1]);
  });
});
