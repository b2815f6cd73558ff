import type { BudgetDecision, BudgetSnapshot } from './budget-store.interface.js';

/**
 * A duration as OpenAI writes it in `x-ratelimit-reset-*` (Go's `time.Duration` format, to the
 * millisecond): `"0s"`, `"20ms"`, `"1s"`, `"1.5s"`, `"6m0s"`, `"23h59m59.999s"`.
 */
export function formatResetDuration(seconds: number): string {
  const ms = Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds * 1000) : 0;
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const rest = ms % 60_000;
  const secs = `${Math.floor(rest / 1000)}${
    rest % 1000 === 0
      ? ''
      : `.${String(rest % 1000)
          .padStart(3, '0')
          .replace(/0+$/, '')}`
  }s`;
  if (hours > 0) return `${hours}h${minutes}m${secs}`;
  if (minutes > 0) return `${minutes}m${secs}`;
  return secs;
}

/**
 * The `x-ratelimit-*` headers (OpenAI's names and formats) of a snapshot: only those of the limits
 * in force. Lower-case names, ready for `res.setHeader`.
 *
 * @example
 * rateLimitHeaders({ limitRequests: 60, remainingRequests: 59, resetRequestsSeconds: 1 });
 * // { 'x-ratelimit-limit-requests': '60', 'x-ratelimit-remaining-requests': '59', 'x-ratelimit-reset-requests': '1s' }
 */
export function rateLimitHeaders(snapshot: BudgetSnapshot): Record<string, string> {
  const headers: Record<string, string> = {};
  if (snapshot.limitRequests !== undefined)
    headers['x-ratelimit-limit-requests'] = String(snapshot.limitRequests);
  if (snapshot.remainingRequests !== undefined)
    headers['x-ratelimit-remaining-requests'] = String(Math.max(0, snapshot.remainingRequests));
  if (snapshot.resetRequestsSeconds !== undefined)
    headers['x-ratelimit-reset-requests'] = formatResetDuration(snapshot.resetRequestsSeconds);
  if (snapshot.limitTokens !== undefined) headers['x-ratelimit-limit-tokens'] = String(snapshot.limitTokens);
  if (snapshot.remainingTokens !== undefined)
    headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, snapshot.remainingTokens));
  if (snapshot.resetTokensSeconds !== undefined)
    headers['x-ratelimit-reset-tokens'] = formatResetDuration(snapshot.resetTokensSeconds);
  return headers;
}

/**
 * `Retry-After` (RFC 9110 §10.2.3: whole seconds) for a refused decision, rounded up and at least 1;
 * `undefined` for an allowed one.
 */
export function retryAfter(decision: BudgetDecision): string | undefined {
  if (decision.allowed) return undefined;
  const seconds = decision.retryAfterSeconds ?? 1;
  return String(Math.max(1, Math.ceil(Number.isFinite(seconds) ? seconds : 1)));
}

/** Every header of a decision: the `x-ratelimit-*` ones, plus `retry-after` when it was refused. */
export function budgetHeaders(decision: BudgetDecision): Record<string, string> {
  const headers = rateLimitHeaders(decision.snapshot);
  const after = retryAfter(decision);
  if (after !== undefined) headers['retry-after'] = after;
  return headers;
}
