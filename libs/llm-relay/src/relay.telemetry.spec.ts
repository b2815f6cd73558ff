import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { RELAY_ROUTES } from './llm-relay.constants.js';
import { addFinishReason, RelayTelemetry, type RelaySpanFacts } from './relay.telemetry.js';

const FACTS: RelaySpanFacts = {
  route: RELAY_ROUTES.chat,
  model: 'chat-fast',
  upstreamModel: 'standin-chat',
  promptTokens: 12,
  completionTokens: 30,
  ttftMs: 5,
  durationMs: 40,
  outcome: 'ok',
  code: undefined,
  upstream: { name: 'llm', origin: 'https://llm.example' },
  finishReasons: ['stop'],
  estimated: false,
};

function recorded() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { telemetry: new RelayTelemetry(undefined, provider.getTracer('test')), exporter };
}

describe('RelayTelemetry spans', () => {
  it('no tracer provider registered: no span, the call runs as is', () => {
    // No SDK in this file: the API's global provider is its no-op proxy.
    expect(trace.getTracerProvider().getTracer('x').startSpan('x').isRecording()).toBe(false);
    const telemetry = new RelayTelemetry();
    const span = telemetry.startCall(RELAY_ROUTES.chat);
    expect(span).toBeUndefined();
    expect(RelayTelemetry.within(span, () => 42)).toBe(42);
    expect(() => telemetry.endCall(span, FACTS)).not.toThrow();
  });

  it.each<[string, Partial<RelaySpanFacts>, string, Record<string, unknown>]>([
    [
      'an answered chat call',
      {},
      'chat chat-fast',
      {
        'gen_ai.request.model': 'chat-fast',
        'gen_ai.response.model': 'standin-chat',
        'gen_ai.usage.input_tokens': 12,
        'gen_ai.usage.output_tokens': 30,
        'gen_ai.response.finish_reasons': ['stop'],
        'server.address': 'llm.example',
        'server.port': 443,
      },
    ],
    [
      'embeddings',
      { route: RELAY_ROUTES.embeddings, model: 'embed', finishReasons: [] },
      'embeddings embed',
      { 'gen_ai.operation.name': 'embeddings' },
    ],
    [
      'a stream cut by its budget',
      { outcome: 'cut', code: 'ERR_LLM_TOKENS_EXCEEDED', estimated: true, finishReasons: ['length'] },
      'chat chat-fast',
      { 'error.type': 'ERR_LLM_TOKENS_EXCEEDED', 'shield.llm.usage.estimated': true },
    ],
    ['a caller gone', { outcome: 'cancelled' }, 'chat chat-fast', { 'error.type': 'cancelled' }],
    [
      'no model resolved',
      {
        model: undefined,
        upstreamModel: undefined,
        upstream: undefined,
        outcome: 'refused',
        code: 'ERR_LLM_MODEL_NOT_FOUND',
      },
      'chat',
      { 'error.type': 'ERR_LLM_MODEL_NOT_FOUND' },
    ],
  ])('%s', (_name, change, name, attributes) => {
    const { telemetry, exporter } = recorded();
    const facts = { ...FACTS, ...change };
    telemetry.endCall(telemetry.startCall(facts.route), facts);
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe(name);
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.attributes).toMatchObject({ 'gen_ai.provider.name': 'openai', ...attributes });
    if (facts.model === undefined) expect(span?.attributes['gen_ai.request.model']).toBeUndefined();
    expect(span?.status.code).toBe(facts.outcome === 'ok' ? SpanStatusCode.UNSET : SpanStatusCode.ERROR);
  });
});

describe('addFinishReason', () => {
  it.each<[unknown, string[]]>([
    ['stop', ['stop']],
    ['tool_calls', ['tool_calls']],
    ['max_output_tokens', ['max_output_tokens']],
    ['the model wrote this', ['other']],
    ['STOP', ['other']],
    [null, []],
    [3, []],
  ])('%j → %j', (value, expected) => {
    const into: string[] = [];
    addFinishReason(into, value);
    expect(into).toEqual(expected);
  });

  it('keeps at most 16', () => {
    const into: string[] = [];
    for (let i = 0; i < 40; i++) addFinishReason(into, 'stop');
    expect(into).toHaveLength(16);
  });
});
