import { createHash } from 'node:crypto';
// A type only: ioredis is an optional peer, and this package loads without it.
import type { Cluster, Redis } from 'ioredis';
import {
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  isShieldError,
  ShieldError,
} from '@inference-shield/core/internal';
import type { BudgetDecision, BudgetLimits, BudgetStore } from './budget-store.interface.js';
import { decisionOf, EXCEEDED_CODES, type WindowCounts } from './budget-windows.js';

/** Options of {@link RedisBudgetStore}. */
export interface RedisBudgetStoreOptions {
  /** The app's ioredis client (`Redis` or `Cluster`); the store never closes it. */
  readonly client: Redis | Cluster;
  /** Prefix of every key the store writes; default `"shield:budget:"`. */
  readonly keyPrefix?: string;
  /**
   * Longest wait for Redis on one call, in ms; default 1000. Past it, or when the client is not
   * connected, the call throws `ERR_BUDGET_STORE_UNAVAILABLE` (503).
   */
  readonly commandTimeoutMs?: number;
  /**
   * Whose clock places a call in its window. `"redis"` (default): the Redis server's `TIME`, one
   * clock for every replica, so replicas whose clocks drift still agree where a minute ends.
   * `"caller"`: the `nowMs` each call passes (tests, or replicas kept in step by NTP).
   */
  readonly clock?: 'redis' | 'caller';
}

const OPTION_KEYS = ['client', 'keyPrefix', 'commandTimeoutMs', 'clock'] as const;
/** Subjects longer than this are keyed by their SHA-256, so a key stays small whatever the relay builds. */
const MAX_PLAIN_SUBJECT = 200;
/** Kept past a window's end, so a key outlives its window by a little and never by much. */
const TTL_SLACK_MS = 5_000;

/**
 * One hash per subject: `m` (epoch minute), `r` (requests in it), `t` (tokens in it), `d` (epoch day),
 * `dt` (tokens in it). One key, so the script is atomic and cluster-safe without hash tags. A stale
 * window reads as zero; counts are written only when the call is allowed (all or nothing), then the
 * key expires a little after the longest window it still counts.
 *
 * ARGV: requests, tokens, limit rpm, limit tpm, limit tpd (-1 = none), now ms (-1 = Redis TIME), slack.
 * Returns: { exceeded (0 none, 1 rpm, 2 tpm, 3 tpd), requests, minute tokens, day tokens, now ms }.
 */
const SCRIPT = `
local now = tonumber(ARGV[6])
if now < 0 then
  if redis.replicate_commands then pcall(redis.replicate_commands) end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local minute = math.floor(now / 60000)
local day = math.floor(now / 86400000)
local requests = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local lr = tonumber(ARGV[3])
local lt = tonumber(ARGV[4])
local ld = tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'm', 'r', 't', 'd', 'dt')
local r, t, dt = 0, 0, 0
if tonumber(v[1]) == minute then
  r = tonumber(v[2]) or 0
  t = tonumber(v[3]) or 0
end
if tonumber(v[4]) == day then dt = tonumber(v[5]) or 0 end
local ex = 0
if tokens > 0 and ld >= 0 and dt + tokens > ld then ex = 3
elseif requests > 0 and lr >= 0 and r + requests > lr then ex = 1
elseif tokens > 0 and lt >= 0 and t + tokens > lt then ex = 2
end
if ex == 0 then
  r = r + requests
  t = math.max(0, t + tokens)
  dt = math.max(0, dt + tokens)
  redis.call('HSET', KEYS[1], 'm', minute, 'r', r, 't', t, 'd', day, 'dt', dt)
  local ends = (minute + 1) * 60000
  if ld >= 0 and dt > 0 then ends = (day + 1) * 86400000 end
  redis.call('PEXPIRE', KEYS[1], ends - now + tonumber(ARGV[7]))
end
return { ex, r, t, dt, now }
`;
const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');

/** Client states in which a command would only wait in ioredis's offline queue: refused at once. */
const DOWN = new Set(['close', 'end', 'reconnecting', 'disconnecting']);

/**
 * Budgets shared by replicas through Redis. Each call is one Lua script on one key (`EVALSHA`, with
 * `EVAL` when Redis answers `NOSCRIPT`, e.g. after a restart or `SCRIPT FLUSH`), so two replicas never
 * both spend the last token. Windows are fixed and aligned to the epoch (UTC minute, UTC day), the
 * same as `MemoryBudgetStore`'s. Keys are `<keyPrefix><subject>` and carry a TTL.
 *
 * Bounded in time: Redis not connected, or slower than `commandTimeoutMs`, throws
 * `ERR_BUDGET_STORE_UNAVAILABLE`. A call that timed out may still be applied by Redis later, so it
 * can count a request the caller was refused: the error is on the side of spending less.
 *
 * @example
 * const store = new RedisBudgetStore({ client: new Redis(process.env.REDIS_URL), keyPrefix: 'relay:' });
 */
export class RedisBudgetStore implements BudgetStore {
  private readonly client: Redis | Cluster;
  private readonly keyPrefix: string;
  private readonly timeoutMs: number;
  private readonly callerClock: boolean;

  constructor(options: RedisBudgetStoreOptions) {
    assertKnownKeys('RedisBudgetStore options', options, OPTION_KEYS);
    assertObject('client', options.client);
    if (typeof options.client.evalsha !== 'function' || typeof options.client.eval !== 'function') {
      throw new TypeError('"client" must be an ioredis Redis or Cluster client');
    }
    const keyPrefix = options.keyPrefix ?? 'shield:budget:';
    assertString('keyPrefix', keyPrefix);
    if (keyPrefix.length > 100) throw new TypeError('"keyPrefix" must be at most 100 characters');
    const timeoutMs = options.commandTimeoutMs ?? 1000;
    assertInteger('commandTimeoutMs', timeoutMs, 10, 60_000);
    const clock = options.clock ?? 'redis';
    assertOneOf('clock', clock, ['redis', 'caller']);
    this.client = options.client;
    this.keyPrefix = keyPrefix;
    this.timeoutMs = timeoutMs;
    this.callerClock = clock === 'caller';
  }

  reserve(subject: string, limits: BudgetLimits, tokens: number, nowMs: number): Promise<BudgetDecision> {
    return this.run(subject, limits, 1, tokens, nowMs);
  }

  adjust(subject: string, limits: BudgetLimits, deltaTokens: number, nowMs: number): Promise<BudgetDecision> {
    return this.run(subject, limits, 0, deltaTokens, nowMs);
  }

  /** Nothing to release: the client is the app's. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The key of a subject (exposed for tests and operators). */
  keyOf(subject: string): string {
    const id =
      subject.length <= MAX_PLAIN_SUBJECT
        ? subject
        : `sha256:${createHash('sha256').update(subject).digest('base64url')}`;
    return this.keyPrefix + id;
  }

  private async run(
    subject: string,
    limits: BudgetLimits,
    requests: number,
    tokens: number,
    nowMs: number,
  ): Promise<BudgetDecision> {
    if (DOWN.has(this.client.status)) {
      throw new ShieldError('ERR_BUDGET_STORE_UNAVAILABLE', {
        message: `Redis client is ${this.client.status}`,
      });
    }
    const args: (string | number)[] = [
      this.keyOf(subject),
      requests,
      Math.trunc(tokens),
      limits.requestsPerMinute ?? -1,
      limits.tokensPerMinute ?? -1,
      limits.tokensPerDay ?? -1,
      this.callerClock ? Math.floor(nowMs) : -1,
      TTL_SLACK_MS,
    ];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ShieldError('ERR_BUDGET_STORE_UNAVAILABLE', {
              message: `Redis did not answer within ${this.timeoutMs} ms`,
            }),
          ),
        this.timeoutMs,
      );
      timer.unref();
    });
    try {
      const reply = await Promise.race([this.evaluate(args), timeout]);
      return this.decide(limits, reply);
    } catch (err) {
      if (isShieldError(err)) throw err;
      throw new ShieldError('ERR_BUDGET_STORE_UNAVAILABLE', { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  private async evaluate(args: (string | number)[]): Promise<unknown> {
    try {
      return await this.client.evalsha(SCRIPT_SHA, 1, ...args);
    } catch (err) {
      // Redis lost its script cache (restart, failover, SCRIPT FLUSH): send the script itself,
      // which also caches it again for the next EVALSHA.
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        return await this.client.eval(SCRIPT, 1, ...args);
      }
      throw err;
    }
  }

  private decide(limits: BudgetLimits, reply: unknown): BudgetDecision {
    if (!Array.isArray(reply) || reply.length !== 5 || !reply.every((n) => typeof n === 'number')) {
      throw new ShieldError('ERR_BUDGET_STORE_UNAVAILABLE', { message: 'Unexpected reply from Redis' });
    }
    const [ex, requests, minuteTokens, dayTokens, now] = reply as number[];
    const nowMs = now ?? 0;
    const counts: WindowCounts = {
      minute: Math.floor(nowMs / 60_000),
      requests: requests ?? 0,
      minuteTokens: minuteTokens ?? 0,
      day: Math.floor(nowMs / 86_400_000),
      dayTokens: dayTokens ?? 0,
    };
    return decisionOf(limits, counts, nowMs, EXCEEDED_CODES[ex ?? 0]);
  }
}
