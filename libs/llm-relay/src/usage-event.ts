import type { ShieldErrorCode } from '@inference-shield/core';
import type { AuditDecision, AuditEvent, AuthMethod, ShieldPrincipal } from '@inference-shield/identity';

/** How a relayed call ended. */
export type LlmUsageOutcome =
  /** Answered in full. */
  | 'ok'
  /** Refused before any upstream call (access, budget, input) or by the upstream. */
  | 'refused'
  /** A stream ended by the relay because it ran past the caller's budget (upstream cancelled). */
  | 'cut'
  /** The caller hung up; the upstream request was cancelled. */
  | 'cancelled'
  /** The upstream failed (connect, TLS, 5xx, a stream broken mid-way). */
  | 'failed';

/**
 * One event per relayed call, through the audit sink: an `AuditEvent` (who, which route, the
 * refusal code) plus what the call cost. Never the prompt, the output or a header.
 */
export interface LlmUsageEvent extends AuditEvent {
  /** Always `"llm.usage"`: tells these apart from the guard's access decisions in one sink. */
  readonly event: 'llm.usage';
  /** The public model name (only names of the catalogue; an unknown name is not recorded). */
  readonly model?: string;
  /** The upstream called (its `UpstreamModule` name). */
  readonly upstream?: string;
  /** The upstream's `usage` (input tokens), or the relay's estimate when none came (`estimated`). */
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  /** True when the token counts are the relay's estimate (cut, cancelled, no `usage` sent). */
  readonly estimated?: boolean;
  /** Milliseconds from the request to the first byte of the answer sent to the caller. */
  readonly ttftMs?: number;
  readonly durationMs: number;
  /** HTTP status answered (200 for a stream, whatever happened after its start). */
  readonly status: number;
  readonly outcome: LlmUsageOutcome;
  readonly stream: boolean;
}

/** The event as the relay builds it: fixed field order, absent facts `undefined` (JSON drops them). */
export class LlmUsageRecord implements LlmUsageEvent {
  readonly event = 'llm.usage' as const;
  readonly method: AuthMethod | undefined;
  readonly subject: string | undefined;
  readonly spiffeId: string | undefined;
  readonly issuer: string | undefined;

  constructor(
    readonly time: string,
    readonly decision: AuditDecision,
    readonly route: string,
    principal: ShieldPrincipal | undefined,
    readonly code: ShieldErrorCode | undefined,
    readonly model: string | undefined,
    readonly upstream: string | undefined,
    readonly promptTokens: number | undefined,
    readonly completionTokens: number | undefined,
    readonly estimated: boolean | undefined,
    readonly ttftMs: number | undefined,
    readonly durationMs: number,
    readonly status: number,
    readonly outcome: LlmUsageOutcome,
    readonly stream: boolean,
  ) {
    this.method = principal?.method;
    this.subject = principal?.subject;
    this.spiffeId = principal?.spiffeId;
    this.issuer = principal?.issuer;
    Object.freeze(this);
  }
}
