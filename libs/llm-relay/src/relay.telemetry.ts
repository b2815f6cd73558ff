import { metrics, type Attributes, type Counter, type Histogram, type Meter } from '@opentelemetry/api';
import type { ShieldErrorCode } from '@inference-shield/core';
import { RELAY_ROUTES } from './llm-relay.constants.js';
import type { LlmUsageOutcome } from './usage-event.js';

/**
 * OpenTelemetry of the relay, through `@opentelemetry/api` only (a no-op unless the application
 * registered an SDK before the app was created), after the GenAI semantic conventions: token
 * usage, operation duration and time to first token per call, and budget refusals. Recorded once
 * per relayed call, from the facts of its usage event: model names of the catalogue only (an
 * unknown name a caller sent is never an attribute), never a prompt or an output.
 * See docs/telemetry.md.
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

/** The relay's instruments, created once per relay service. */
export class RelayTelemetry {
  private readonly tokens: Histogram;
  private readonly duration: Histogram;
  private readonly firstToken: Histogram;
  private readonly budgetRefusals: Counter;

  constructor(meter: Meter = metrics.getMeter(SCOPE)) {
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
