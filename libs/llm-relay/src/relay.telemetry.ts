import {
  context,
  metrics,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { ShieldErrorCode } from '@inference-shield/core';
import { RELAY_ROUTES } from './llm-relay.constants.js';
import type { LlmUsageOutcome } from './usage-event.js';

/**
 * OpenTelemetry of the relay, through `@opentelemetry/api` only (a no-op unless the application
 * registered an SDK before the app was created), after the GenAI semantic conventions: token
 * usage, operation duration and time to first token per call, and budget refusals; and one GenAI
 * client span per call (`chat {model}`, `embeddings {model}`), parent of its upstream call's span.
 * Recorded from the facts of the call's usage event: model names of the catalogue only (an
 * unknown name a caller sent is never an attribute), finish reasons from a fixed list, never a
 * prompt or an output. See docs/telemetry.md.
 */
const SCOPE = '@inference-shield/llm-relay';

/** What one relayed call tells the instruments (its usage event's facts). */
export interface RelayCallFacts {
  readonly route: string;
  readonly model: string | undefined;
  readonly upstreamModel: string | undefined;
  readonly promptTokens: number | undefined;
  readonly completionTokens: number | undefined;
  readonly ttftMs: number | undefined;
  readonly durationMs: number;
  readonly outcome: LlmUsageOutcome;
  readonly code: ShieldErrorCode | undefined;
}

// GenAI semconv: `gen_ai.operation.name`. The Responses API is a chat operation.
const OPERATIONS: Readonly<Record<string, string>> = Object.freeze({
  [RELAY_ROUTES.chat]: 'chat',
  [RELAY_ROUTES.responses]: 'chat',
  [RELAY_ROUTES.embeddings]: 'embeddings',
});
// The semantic conventions' advice for these histograms.
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];
const SECONDS_BUCKETS = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const BUDGET_LIMITS: Partial<Record<ShieldErrorCode, string>> = {
  ERR_LLM_REQUESTS_EXCEEDED: 'requests',
  ERR_LLM_TOKENS_EXCEEDED: 'tokens',
};
/**
 * Finish reasons recorded as they are (OpenAI's chat and Responses values); anything else the
 * upstream sends is `other`: the value is the upstream's text, so it never goes out unchecked.
 */
const FINISH_REASONS: ReadonlySet<string> = new Set([
  'stop',
  'length',
  'tool_calls',
  'content_filter',
  'function_call',
  'max_output_tokens',
  'completed',
  'incomplete',
  'failed',
  'cancelled',
]);
/** At most this many finish reasons per call (one per choice; `n` is bounded by the relay too). */
const MAX_FINISH_REASONS = 16;
const CALL_SPAN_KIND = Object.freeze({ kind: SpanKind.CLIENT });

/** What ends a call's span besides the facts of its usage event. */
export interface RelaySpanFacts extends RelayCallFacts {
  /** The upstream's name and origin (`server.address`, `server.port`), when the model resolved. */
  readonly upstream: { readonly name: string; readonly origin: string } | undefined;
  readonly finishReasons: readonly string[];
  /** Token counts are the relay's estimate (the upstream gave no `usage`). */
  readonly estimated: boolean;
}

/**
 * This package's tracer when a tracer provider is registered now, else `undefined`: without one,
 * a call starts no span and activates no context (one check per call).
 */
function registeredTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  if (provider instanceof ProxyTracerProvider && provider.getDelegateTracer(SCOPE) === undefined) {
    return undefined;
  }
  return trace.getTracer(SCOPE);
}

/** Adds one finish reason of the upstream's answer to `into`, from the fixed list (else `other`). */
export function addFinishReason(into: string[], value: unknown): void {
  if (typeof value !== 'string' || into.length >= MAX_FINISH_REASONS) return;
  into.push(FINISH_REASONS.has(value) ? value : 'other');
}

/** `server.address` and `server.port` of an upstream origin, parsed once per origin. */
const servers = new Map<string, Attributes>();
function serverOf(origin: string): Attributes {
  let attributes = servers.get(origin);
  if (attributes === undefined) {
    const url = new URL(origin);
    attributes = Object.freeze({
      'server.address': url.hostname,
      'server.port': url.port === '' ? 443 : Number(url.port),
    });
    servers.set(origin, attributes);
  }
  return attributes;
}

/** The relay's instruments, created once per relay service. */
export class RelayTelemetry {
  private readonly tokens: Histogram;
  private readonly duration: Histogram;
  private readonly firstToken: Histogram;
  private readonly budgetRefusals: Counter;
  private readonly tracer: Tracer | undefined;

  constructor(meter: Meter = metrics.getMeter(SCOPE), tracer: Tracer | undefined = registeredTracer()) {
    this.tracer = tracer;
    this.tokens = meter.createHistogram('gen_ai.client.token.usage', {
      description: 'Tokens used per relayed call, by token type (input, output) and model.',
      unit: '{token}',
      advice: { explicitBucketBoundaries: TOKEN_BUCKETS },
    });
    this.duration = meter.createHistogram('gen_ai.client.operation.duration', {
      description: 'Duration of a relayed call, from the request to the end of the answer.',
      unit: 's',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    });
    this.firstToken = meter.createHistogram('gen_ai.server.time_to_first_token', {
      description: 'Time from the request to the first byte of the answer sent to the caller.',
      unit: 's',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    });
    this.budgetRefusals = meter.createCounter('shield.llm.budget.refusals', {
      description: 'Relayed calls refused or cut by a budget, by limit (requests, tokens, stream_cut).',
      unit: '{call}',
    });
  }

  /**
   * Starts the GenAI client span of one call (kind CLIENT, named after the operation until the
   * model is known); undefined when no tracer provider is registered.
   */
  startCall(route: string): Span | undefined {
    if (this.tracer === undefined) return undefined;
    const operation = OPERATIONS[route] ?? 'chat';
    const span = this.tracer.startSpan(operation, CALL_SPAN_KIND);
    if (span.isRecording()) {
      span.setAttributes({ 'gen_ai.operation.name': operation, 'gen_ai.provider.name': 'openai' });
    }
    return span;
  }

  /** Runs `fn` with the call's span active: the upstream call's span becomes its child. */
  static within<T>(span: Span | undefined, fn: () => T): T {
    return span === undefined ? fn() : context.with(trace.setSpan(context.active(), span), fn);
  }

  /**
   * Ends a call's span: `{operation} {model}` (the catalogue name), the models, token usage,
   * finish reasons; on failure `error.type` (our code, or `cut`/`cancelled`) and status `ERROR`.
   */
  endCall(span: Span | undefined, facts: RelaySpanFacts): void {
    if (span === undefined) return;
    if (span.isRecording()) {
      const operation = OPERATIONS[facts.route] ?? 'chat';
      if (facts.model !== undefined) {
        span.updateName(`${operation} ${facts.model}`);
        span.setAttribute('gen_ai.request.model', facts.model);
      }
      if (facts.upstreamModel !== undefined) span.setAttribute('gen_ai.response.model', facts.upstreamModel);
      if (facts.upstream !== undefined) {
        span.setAttribute('shield.upstream', facts.upstream.name);
        span.setAttributes(serverOf(facts.upstream.origin));
      }
      if (facts.promptTokens !== undefined)
        span.setAttribute('gen_ai.usage.input_tokens', facts.promptTokens);
      if (facts.completionTokens !== undefined) {
        span.setAttribute('gen_ai.usage.output_tokens', facts.completionTokens);
      }
      if (facts.estimated) span.setAttribute('shield.llm.usage.estimated', true);
      if (facts.finishReasons.length > 0) {
        span.setAttribute('gen_ai.response.finish_reasons', [...facts.finishReasons]);
      }
      const errorType =
        facts.outcome === 'ok' ? undefined : facts.code !== undefined ? facts.code : facts.outcome;
      if (errorType !== undefined) {
        span.setAttribute('error.type', errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
      }
    }
    span.end();
  }

  /** Records one relayed call. */
  called(facts: RelayCallFacts): void {
    const operation = OPERATIONS[facts.route] ?? 'chat';
    const base: Attributes = {
      'gen_ai.operation.name': operation,
      'gen_ai.provider.name': 'openai',
      ...(facts.model !== undefined ? { 'gen_ai.request.model': facts.model } : {}),
      ...(facts.upstreamModel !== undefined ? { 'gen_ai.response.model': facts.upstreamModel } : {}),
    };
    const failed = facts.outcome !== 'ok' && facts.code !== undefined;
    this.duration.record(
      facts.durationMs / 1000,
      failed
        ? { ...base, 'error.type': facts.code }
        : facts.outcome === 'ok'
          ? base
          : { ...base, 'error.type': facts.outcome },
    );
    if (facts.promptTokens !== undefined) {
      this.tokens.record(facts.promptTokens, { ...base, 'gen_ai.token.type': 'input' });
    }
    if (facts.completionTokens !== undefined) {
      this.tokens.record(facts.completionTokens, { ...base, 'gen_ai.token.type': 'output' });
    }
    if (facts.ttftMs !== undefined && facts.outcome === 'ok')
      this.firstToken.record(facts.ttftMs / 1000, base);
    const limit =
      facts.outcome === 'cut'
        ? 'stream_cut'
        : facts.code !== undefined
          ? BUDGET_LIMITS[facts.code]
          : undefined;
    if (limit !== undefined) {
      this.budgetRefusals.add(1, {
        'shield.llm.limit': limit,
        ...(facts.model !== undefined ? { 'gen_ai.request.model': facts.model } : {}),
      });
    }
  }
}
