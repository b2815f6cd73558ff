import type {
  BudgetDecision,
  BudgetExceeded,
  BudgetLimits,
  BudgetSnapshot,
} from './budget-store.interface.js';

/**
 * The windows both stores count in, so one process and many replicas refuse the same calls: fixed
 * windows aligned to the Unix epoch, one per UTC minute (requests and tokens per minute) and one per
 * UTC day (tokens per day). A fixed window lets a caller spend up to twice a per-minute limit across
 * a boundary (the end of one minute and the start of the next); that is the usual trade for one
 * counter and one key per window, and what OpenAI's own per-minute limits allow too.
 *
 * `adjust` counts in the window of its own call: tokens given back (a negative delta) after the
 * reservation's minute ended come off the new minute, never below zero, and off the day as usual.
 */
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** The counters of one subject, in the windows that `minute` and `day` name. */
export interface WindowCounts {
  /** Epoch minute index of `requests` and `minuteTokens`. */
  readonly minute: number;
  readonly requests: number;
  readonly minuteTokens: number;
  /** Epoch day index of `dayTokens`. */
  readonly day: number;
  readonly dayTokens: number;
}

/** 0 = allowed; otherwise which limit refused (the order of the Lua script's return codes). */
export const EXCEEDED_CODES: readonly (BudgetExceeded | undefined)[] = [
  undefined,
  'requests-per-minute',
  'tokens-per-minute',
  'tokens-per-day',
];

/** Seconds (millisecond precision) until the window of `lengthMs` that holds `nowMs` ends. */
export function secondsToReset(nowMs: number, lengthMs: number): number {
  return (lengthMs - (((nowMs % lengthMs) + lengthMs) % lengthMs)) / 1000;
}

/** True when `value` is a usable limit (the relay validated it; a store does not re-check). */
function has(limit: number | undefined): limit is number {
  return limit !== undefined;
}

/** What the caller is told: the request window, and the token limit with the least left. */
export function snapshotOf(limits: BudgetLimits, counts: WindowCounts, nowMs: number): BudgetSnapshot {
  const snapshot: {
    limitRequests?: number;
    remainingRequests?: number;
    resetRequestsSeconds?: number;
    limitTokens?: number;
    remainingTokens?: number;
    resetTokensSeconds?: number;
  } = {};
  if (has(limits.requestsPerMinute)) {
    snapshot.limitRequests = limits.requestsPerMinute;
    snapshot.remainingRequests = Math.max(0, limits.requestsPerMinute - counts.requests);
    snapshot.resetRequestsSeconds = secondsToReset(nowMs, MINUTE_MS);
  }
  const perMinute = has(limits.tokensPerMinute)
    ? Math.max(0, limits.tokensPerMinute - counts.minuteTokens)
    : undefined;
  const perDay = has(limits.tokensPerDay) ? Math.max(0, limits.tokensPerDay - counts.dayTokens) : undefined;
  // The tightest limit is the one with the least left; on a tie the per-day one, which resets later.
  if (perDay !== undefined && (perMinute === undefined || perDay <= perMinute)) {
    snapshot.limitTokens = limits.tokensPerDay;
    snapshot.remainingTokens = perDay;
    snapshot.resetTokensSeconds = secondsToReset(nowMs, DAY_MS);
  } else if (perMinute !== undefined) {
    snapshot.limitTokens = limits.tokensPerMinute;
    snapshot.remainingTokens = perMinute;
    snapshot.resetTokensSeconds = secondsToReset(nowMs, MINUTE_MS);
  }
  return snapshot;
}

/** The decision for a call refused by `exceeded`, or allowed when it is `undefined`. */
export function decisionOf(
  limits: BudgetLimits,
  counts: WindowCounts,
  nowMs: number,
  exceeded: BudgetExceeded | undefined,
): BudgetDecision {
  const snapshot = snapshotOf(limits, counts, nowMs);
  if (exceeded === undefined) return { allowed: true, snapshot };
  const retryAfterSeconds = secondsToReset(nowMs, exceeded === 'tokens-per-day' ? DAY_MS : MINUTE_MS);
  return { allowed: false, exceeded, retryAfterSeconds, snapshot };
}

/**
 * The pure rule both stores apply (the Redis script is its Lua transcription): which limit, if any,
 * refuses adding `requests` and `tokens` to `counts`. A refusal by the day outranks one by the
 * minute, since waiting for the minute would not help.
 */
export function firstExceeded(
  limits: BudgetLimits,
  counts: WindowCounts,
  requests: number,
  tokens: number,
): BudgetExceeded | undefined {
  if (tokens > 0 && has(limits.tokensPerDay) && counts.dayTokens + tokens > limits.tokensPerDay)
    return 'tokens-per-day';
  if (requests > 0 && has(limits.requestsPerMinute) && counts.requests + requests > limits.requestsPerMinute)
    return 'requests-per-minute';
  if (tokens > 0 && has(limits.tokensPerMinute) && counts.minuteTokens + tokens > limits.tokensPerMinute)
    return 'tokens-per-minute';
  return undefined;
}
