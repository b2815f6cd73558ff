import { ShieldError } from '@inference-shield/core/internal';
import type { DpopReplayStore } from './dpop-replay.store.js';

/**
 * The one command {@link RedisDpopReplayStore} uses, as ioredis (an optional peer dependency,
 * passed in by the application) provides it: `SET key value PX ms NX`.
 */
export interface DpopRedisClient {
  set(key: string, value: string, px: 'PX', ttlMs: number, nx: 'NX'): Promise<'OK' | null>;
}

/** Options of {@link RedisDpopReplayStore}. */
export interface RedisDpopReplayStoreOptions {
  /** Prefix of every key. Default `shield:dpop:`. */
  keyPrefix?: string;
  /** A command that takes longer is abandoned and the request refused (503), in ms. Default 2000. */
  commandTimeoutMs?: number;
}

/**
 * The replay store shared by every replica: `SET <prefix><hash> 1 PX <ttl> NX`, one atomic
 * command, so a proof sent to two replicas at the same instant is accepted by one of them only.
 * Redis unreachable, slow or failing: the request is refused (`503`), never let through.
 *
 * @example
 * import { Redis } from 'ioredis';
 * dpop: { origin: 'https://api.example', replayStore: new RedisDpopReplayStore(new Redis(process.env.REDIS_URL)) }
 */
export class RedisDpopReplayStore implements DpopReplayStore {
  private readonly keyPrefix: string;
  private readonly timeoutMs: number;

  constructor(
    private readonly redis: DpopRedisClient,
    options: RedisDpopReplayStoreOptions = {},
  ) {
    if (typeof redis !== 'object' || redis === null || typeof redis.set !== 'function') {
      throw new TypeError('RedisDpopReplayStore needs an ioredis client (new Redis(...))');
    }
    const keyPrefix = options.keyPrefix ?? 'shield:dpop:';
    if (typeof keyPrefix !== 'string' || keyPrefix.length > 128) {
      throw new TypeError('"keyPrefix" must be a string of at most 128 characters');
    }
    const timeoutMs = options.commandTimeoutMs ?? 2000;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 10 || timeoutMs > 60_000) {
      throw new TypeError(`"commandTimeoutMs" must be an integer from 10 to 60000, got ${String(timeoutMs)}`);
    }
    this.keyPrefix = keyPrefix;
    this.timeoutMs = timeoutMs;
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    // ioredis queues commands while it reconnects: bound the wait, then refuse.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new ShieldError('ERR_DPOP_REPLAY_STORE_UNAVAILABLE', { detail: 'Redis command timed out' })),
        this.timeoutMs,
      );
    });
    try {
      const reply = await Promise.race([
        this.redis.set(`${this.keyPrefix}${key}`, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'),
        timeout,
      ]);
      return reply === 'OK';
    } catch (err) {
      if (err instanceof ShieldError) throw err;
      throw new ShieldError('ERR_DPOP_REPLAY_STORE_UNAVAILABLE', {
        detail: 'Redis command failed',
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
