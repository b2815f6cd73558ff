import { Logger } from '@nestjs/common';
import type { ShieldPrincipal } from '@inference-shield/identity';
import type {
  BudgetDecision,
  BudgetLimits,
  BudgetSnapshot,
  BudgetStore,
} from './budget/budget-store.interface.js';
import { budgetHeaders as decisionHeaders, rateLimitHeaders } from './budget/rate-limit-headers.js';
import type { ResolvedLlmRelayOptions, ResolvedRelayModel } from './llm-relay-options.interface.js';
import { relayError, RelayHttpError } from './openai-error.js';

interface Counted {
  readonly subject: string;
  readonly limits: BudgetLimits;
}

/**
 * The tokens held for one call, in every budget that counts it. Grown while a stream outgrows it,
 * settled once with the upstream's `usage`.
 */
export class Reservation {
  /** Tokens currently held in every subject. */
  held: number;
  private settled = false;

  constructor(
    private readonly gate: BudgetGate,
    private readonly counted: readonly Counted[],
    reserved: number,
    /** What the caller is told in `x-ratelimit-*` (the tightest budget). */
    readonly snapshot: BudgetSnapshot,
  ) {
    this.held = reserved;
  }

  /** Hold `tokens` more in every budget, all or nothing; false when a budget refuses. */
  async grow(tokens: number): Promise<boolean> {
    const applied: Counted[] = [];
    try {
      for (const c of this.counted) {
        const d = await this.gate.store.adjust(c.subject, c.limits, tokens, Date.now());
        if (!d.allowed) {
          await this.undo(applied, tokens);
          return false;
        }
        applied.push(c);
      }
    } catch (err) {
      // The store failed mid-stream: closed, the stream ends as if over budget; open, it goes on.
      await this.undo(applied, tokens);
      return this.gate.storeFailedMidCall(err);
    }
    this.held += tokens;
    return true;
  }

  /** Replace what is held by what the call really used (once; later calls do nothing). */
  async settle(actual: number): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    const delta = actual - this.held;
    if (delta === 0) return;
    try {
      for (const c of this.counted) await this.gate.store.adjust(c.subject, c.limits, delta, Date.now());
    } catch (err) {
      this.gate.reportSettleFailure(err);
    }
  }

  private async undo(applied: readonly Counted[], tokens: number): Promise<void> {
    for (const c of applied) {
      await this.gate.store.adjust(c.subject, c.limits, -tokens, Date.now()).catch(() => undefined);
    }
  }
}

/** The relay's side of budgets: which subjects a call counts against, refusals, fail-open. */
export class BudgetGate {
  private readonly logger = new Logger('LlmRelayBudget');
  private readonly perPrincipal: BudgetLimits | undefined;
  private readonly failOpen: boolean;

  constructor(
    readonly store: BudgetStore,
    options: ResolvedLlmRelayOptions,
  ) {
    this.perPrincipal = options.budgets.perPrincipal;
    this.failOpen = options.budgets.onStoreError === 'open';
  }

  /**
   * Before a call: count one request and reserve `tokens` in the model's budget of this principal
   * (when configured), then in the principal's. Refused → a 429 with `Retry-After` and
   * `x-ratelimit-*`; store down → 503, or `undefined` (uncounted) when failing open.
   */
  async reserve(
    principal: ShieldPrincipal,
    model: ResolvedRelayModel,
    tokens: number,
  ): Promise<Reservation | undefined> {
    const key = subjectOf(principal);
    const counted: Counted[] = [];
    if (model.limits !== undefined)
      counted.push({ subject: `${key}\u0000${model.id}`, limits: model.limits });
    if (this.perPrincipal !== undefined) counted.push({ subject: key, limits: this.perPrincipal });
    if (counted.length === 0) return undefined;
    const done: Counted[] = [];
    let tightest: BudgetSnapshot | undefined;
    try {
      for (const c of counted) {
        const d = await this.store.reserve(c.subject, c.limits, tokens, Date.now());
        if (!d.allowed) {
          // Give back the tokens already held elsewhere (the request stays counted there).
          for (const g of done) await this.store.adjust(g.subject, g.limits, -tokens, Date.now());
          throw refusal(d);
        }
        done.push(c);
        tightest = tighter(tightest, d.snapshot);
      }
    } catch (err) {
      if (err instanceof RelayHttpError) throw err;
      for (const g of done)
        await this.store.adjust(g.subject, g.limits, -tokens, Date.now()).catch(() => undefined);
      if (this.failOpen) {
        this.logger.warn(
          `budget store failed (${errorName(err)}): call let through uncounted (onStoreError: open)`,
        );
        return undefined;
      }
      throw relayError('ERR_BUDGET_STORE_UNAVAILABLE', { cause: err });
    }
    return new Reservation(this, counted, tokens, tightest ?? {});
  }

  /** A store failure while a stream grows: true (go on) only when failing open. */
  storeFailedMidCall(err: unknown): boolean {
    this.logger.warn(`budget store failed mid-stream (${errorName(err)})`);
    return this.failOpen;
  }

  reportSettleFailure(err: unknown): void {
    this.logger.warn(`budget store failed while settling usage (${errorName(err)})`);
  }
}

/** The `x-ratelimit-*` headers of a reservation (none when uncounted). */
export function budgetHeaders(reservation: Reservation | undefined): Record<string, string> {
  return reservation === undefined ? {} : rateLimitHeaders(reservation.snapshot);
}

/**
 * A principal's stable key: how it authenticated, who issued it, who it is. Joined with NUL, which
 * no issuer or subject carries, so two principals never share a key.
 */
export function subjectOf(principal: ShieldPrincipal): string {
  return `${principal.method}\u0000${principal.issuer}\u0000${principal.subject}`;
}

function tighter(a: BudgetSnapshot | undefined, b: BudgetSnapshot): BudgetSnapshot {
  if (a === undefined) return b;
  const ra = a.remainingTokens ?? Number.POSITIVE_INFINITY;
  const rb = b.remainingTokens ?? Number.POSITIVE_INFINITY;
  return rb < ra ? b : a;
}

function refusal(d: BudgetDecision): RelayHttpError {
  const headers = decisionHeaders(d);
  return relayError(
    d.exceeded === 'requests-per-minute' ? 'ERR_LLM_REQUESTS_EXCEEDED' : 'ERR_LLM_TOKENS_EXCEEDED',
    {
      headers,
    },
  );
}

function errorName(err: unknown): string {
  if (err instanceof Error)
    return (err as { code?: unknown }).code !== undefined
      ? String((err as { code?: unknown }).code)
      : err.name;
  return typeof err;
}
