import { createHash } from 'node:crypto';
import { ShieldError } from '@inference-shield/core/internal';
import type { Redis } from 'ioredis';
import type { SamlReplayCache } from './saml-replay-cache.js';
import type { SamlRequestStore } from './saml-request-store.js';

/** Options of the Redis-backed SAML stores. */
export interface RedisSamlStoreOptions {
  /** Prefix of every key. Default `shield:saml:`. */
  keyPrefix?: string;
  /** A command that takes longer is abandoned and the message refused (503), in ms. Default 2000. */
  commandTimeoutMs?: number;
}

function resolveStoreOptions(options: RedisSamlStoreOptions): { keyPrefix: string; timeoutMs: number } {
  const keyPrefix = options.keyPrefix ?? 'shield:saml:';
  if (typeof keyPrefix !== 'string' || keyPrefix.length > 128) {
    throw new TypeError(`"keyPrefix" must be a string of at most 128 characters`);
  }
  const timeoutMs = options.commandTimeoutMs ?? 2000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 10 || timeoutMs > 60_000) {
    throw new TypeError(`"commandTimeoutMs" must be an integer from 10 to 60000, got ${String(timeoutMs)}`);
  }
  return { keyPrefix, timeoutMs };
}

// Keys hold a hash, never the attacker-chosen ID itself: bounded length, no key-space games.
function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * Bounds a Redis command in time: ioredis queues commands while it reconnects, which would
 * otherwise hang the login. A failure or timeout refuses the message (503), never accepts it.
 */
async function bounded<T>(command: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ShieldError('ERR_NOT_READY', { detail: 'SAML store: Redis command timed out' })),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([command, timeout]);
  } catch (err) {
    if (err instanceof ShieldError) throw err;
    throw new ShieldError('ERR_NOT_READY', { detail: 'SAML store: Redis command failed', cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The replay cache shared by every replica: `SET key 1 PXAT <expiry> NX`, one atomic command, so
 * two replicas receiving the same assertion at the same instant cannot both accept it.
 * Key: `<prefix>assertion:<sha256(id)>`; Redis drops it when the assertion expires.
 *
 * @example
 * const replayCache = new RedisSamlReplayCache(new Redis(process.env.REDIS_URL));
 */
export class RedisSamlReplayCache implements SamlReplayCache {
  private readonly keyPrefix: string;
  private readonly timeoutMs: number;

  constructor(
    private readonly redis: Redis,
    options: RedisSamlStoreOptions = {},
  ) {
    ({ keyPrefix: this.keyPrefix, timeoutMs: this.timeoutMs } = resolveStoreOptions(options));
  }

  async consumeOnce(id: string, expiresAt: Date): Promise<boolean> {
    const key = `${this.keyPrefix}assertion:${digest(id)}`;
    // At least one second ahead: PXAT in the past would store nothing and return OK.
    const at = Math.max(expiresAt.getTime(), Date.now() + 1000);
    const reply = await bounded(this.redis.set(key, '1', 'PXAT', at, 'NX'), this.timeoutMs);
    return reply === 'OK';
  }
}

/**
 * The AuthnRequest store shared by every replica: `SET ... PXAT` on login, `GETDEL` on the
 * response, so each request ID is answered once, on whichever replica the response lands.
 */
export class RedisSamlRequestStore implements SamlRequestStore {
  private readonly keyPrefix: string;
  private readonly timeoutMs: number;

  constructor(
    private readonly redis: Redis,
    options: RedisSamlStoreOptions = {},
  ) {
    ({ keyPrefix: this.keyPrefix, timeoutMs: this.timeoutMs } = resolveStoreOptions(options));
  }

  async save(id: string, idp: string, expiresAt: Date): Promise<void> {
    const key = `${this.keyPrefix}request:${digest(id)}`;
    await bounded(this.redis.set(key, idp, 'PXAT', expiresAt.getTime()), this.timeoutMs);
  }

  async take(id: string): Promise<string | undefined> {
    const key = `${this.keyPrefix}request:${digest(id)}`;
    const value = await bounded(this.redis.getdel(key), this.timeoutMs);
    return value ?? undefined;
  }
}
