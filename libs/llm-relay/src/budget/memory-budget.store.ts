import { assertInteger, assertKnownKeys, ShieldError } from '@inference-shield/core/internal';
import type { BudgetDecision, BudgetLimits, BudgetStore } from './budget-store.interface.js';
import { DAY_MS, decisionOf, firstExceeded, MINUTE_MS, type WindowCounts } from './budget-windows.js';

/** Options of {@link MemoryBudgetStore}. */
export interface MemoryBudgetStoreOptions {
  /**
   * Most subjects counted at once; default 100 000. A subject is forgotten when its windows end.
   * When every slot holds a live subject, a new subject is refused (`ERR_BUDGET_STORE_UNAVAILABLE`)
   * rather than evicting a live one, which would hand that subject a fresh budget.
   */
  readonly maxSubjects?: number;
}

interface Entry {
  minute: number;
  requests: number;
  minuteTokens: number;
  day: number;
  dayTokens: number;
  /** When the longest window still counting for this subject ends (epoch ms). */
  expiresAt: number;
}

const OPTION_KEYS = ['maxSubjects'] as const;
const SWEEP_EVERY_MS = 60_000;

/**
 * Budgets counted in this process (one replica). Fixed windows aligned to the epoch: per UTC minute
 * (requests, tokens) and per UTC day (tokens), as in `RedisBudgetStore`. Each call is O(1): the map
 * is kept in least-recently-used order, and an expired subject is dropped when it is next seen, from
 * the head of the map on each call, or by a sweep every minute on a timer that never keeps the
 * process alive.
 *
 * @example
 * const store = new MemoryBudgetStore({ maxSubjects: 50_000 });
 */
export class MemoryBudgetStore implements BudgetStore {
  private readonly maxSubjects: number;
  private readonly entries = new Map<string, Entry>();
  /** The latest clock a caller gave: expiry is judged on the callers' clock, not on ours. */
  private lastNowMs = 0;
  private lastFullSweepMs = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: MemoryBudgetStoreOptions = {}) {
    assertKnownKeys('MemoryBudgetStore options', options, OPTION_KEYS);
    const maxSubjects = options.maxSubjects ?? 100_000;
    assertInteger('maxSubjects', maxSubjects, 1, 10_000_000);
    this.maxSubjects = maxSubjects;
    this.timer = setInterval(() => this.sweep(this.lastNowMs), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  /** Subjects counted right now (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  reserve(subject: string, limits: BudgetLimits, tokens: number, nowMs: number): Promise<BudgetDecision> {
    try {
      return Promise.resolve(this.apply(subject, limits, 1, tokens, nowMs));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  adjust(subject: string, limits: BudgetLimits, deltaTokens: number, nowMs: number): Promise<BudgetDecision> {
    try {
      return Promise.resolve(this.apply(subject, limits, 0, deltaTokens, nowMs));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.entries.clear();
    return Promise.resolve();
  }

  private apply(
    subject: string,
    limits: BudgetLimits,
    requests: number,
    tokens: number,
    nowMs: number,
  ): BudgetDecision {
    if (nowMs > this.lastNowMs) this.lastNowMs = nowMs;
    const minute = Math.floor(nowMs / MINUTE_MS);
    const day = Math.floor(nowMs / DAY_MS);
    let entry = this.entries.get(subject);
    if (entry !== undefined) {
      // Least-recently-used order: the head of the map is the subject seen longest ago.
      this.entries.delete(subject);
    } else {
      this.dropExpiredHead(nowMs);
      if (this.entries.size >= this.maxSubjects) {
        if (nowMs - this.lastFullSweepMs >= 1000) {
          this.lastFullSweepMs = nowMs;
          this.sweep(nowMs);
        }
        if (this.entries.size >= this.maxSubjects) {
          throw new ShieldError('ERR_BUDGET_STORE_UNAVAILABLE', {
            message: `The in-memory budget store tracks its maximum of ${this.maxSubjects} subjects.`,
          });
        }
      }
    }
    const counts: WindowCounts = {
      minute,
      requests: entry !== undefined && entry.minute === minute ? entry.requests : 0,
      minuteTokens: entry !== undefined && entry.minute === minute ? entry.minuteTokens : 0,
      day,
      dayTokens: entry !== undefined && entry.day === day ? entry.dayTokens : 0,
    };
    const exceeded = firstExceeded(limits, counts, requests, tokens);
    let after = counts;
    if (exceeded === undefined) {
      after = {
        minute,
        requests: counts.requests + requests,
        minuteTokens: Math.max(0, counts.minuteTokens + tokens),
        day,
        dayTokens: Math.max(0, counts.dayTokens + tokens),
      };
    }
    const expiresAt =
      limits.tokensPerDay !== undefined && after.dayTokens > 0
        ? (day + 1) * DAY_MS
        : (minute + 1) * MINUTE_MS;
    if (entry === undefined) entry = { ...after, expiresAt };
    else Object.assign(entry, after, { expiresAt });
    this.entries.set(subject, entry);
    return decisionOf(limits, after, nowMs, exceeded);
  }

  private dropExpiredHead(nowMs: number): void {
    // Up to two per call: enough to drain expired subjects faster than new ones arrive, still O(1).
    for (let i = 0; i < 2; i++) {
      const head = this.entries.entries().next();
      if (head.done === true || head.value[1].expiresAt > nowMs) return;
      this.entries.delete(head.value[0]);
    }
  }

  private sweep(nowMs: number): void {
    for (const [subject, entry] of this.entries) {
      if (entry.expiresAt <= nowMs) this.entries.delete(subject);
    }
  }
}
