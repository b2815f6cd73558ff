/**
 * The contract between the relay and the place where budgets are counted (one process: memory;
 * replicas: Redis). Every call is atomic for one subject: two relay processes counting against the
 * same subject never both see the last token as free.
 *
 * A subject is an opaque string the relay builds (the principal's stable key, optionally joined with
 * the public model name); a store never parses it.
 */

/** The limits that apply to one subject, already validated at start-up. A missing limit is unlimited. */
export interface BudgetLimits {
  readonly requestsPerMinute?: number;
  readonly tokensPerMinute?: number;
  readonly tokensPerDay?: number;
}

/** What the caller is told in the `x-ratelimit-*` headers (OpenAI's names), after a call. */
export interface BudgetSnapshot {
  readonly limitRequests?: number;
  readonly remainingRequests?: number;
  /** Seconds until the request window resets. */
  readonly resetRequestsSeconds?: number;
  /** The tightest token limit in force (per minute or per day). */
  readonly limitTokens?: number;
  readonly remainingTokens?: number;
  readonly resetTokensSeconds?: number;
}

/** Which limit refused a call. */
export type BudgetExceeded = 'requests-per-minute' | 'tokens-per-minute' | 'tokens-per-day';

export interface BudgetDecision {
  readonly allowed: boolean;
  /** Set when `allowed` is false: which limit, and when it is worth retrying. */
  readonly exceeded?: BudgetExceeded;
  readonly retryAfterSeconds?: number;
  readonly snapshot: BudgetSnapshot;
}

export interface BudgetStore {
  /**
   * Before a call: count one request and reserve `tokens` (the estimate), all or nothing. Refused
   * (nothing counted) when either the request or the tokens would exceed a limit.
   */
  reserve(subject: string, limits: BudgetLimits, tokens: number, nowMs: number): Promise<BudgetDecision>;
  /**
   * During and after a call: add `deltaTokens` (negative gives tokens back, e.g. when the upstream's
   * `usage` comes in under the estimate). A positive delta that would exceed a limit is NOT applied
   * and comes back `allowed: false`; the relay then ends the stream. A negative delta always applies.
   */
  adjust(subject: string, limits: BudgetLimits, deltaTokens: number, nowMs: number): Promise<BudgetDecision>;
  /** Releases connections and timers the store owns (not a Redis client the app passed in). */
  close(): Promise<void>;
}
