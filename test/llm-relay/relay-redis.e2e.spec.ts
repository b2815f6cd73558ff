/**
 * Budgets shared by two relays over one real `redis-server`: two apps, each with its own HTTPS
 * server, its own ioredis connection and its own `RedisBudgetStore`, sharing nothing but Redis (as
 * two replicas would), called through the `openai` SDK. Then Redis goes away: 503 by default,
 * uncounted calls with `onStoreError: 'open'`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '@inference-shield/dev-pki';
import { RedisBudgetStore, type LlmRelayModuleOptions } from '@inference-shield/llm-relay';
import { startRedis, type RunningRedis } from '../support/redis-server.js';
import { CaptureLogger, type TestApp } from '../support/harness.js';
import {
  CaptureSink,
  relayAppModule,
  sdk,
  startRelayApp,
  startStandin,
  workload,
  type StandinSetup,
} from './support/relay-fixture.js';

const REQUESTS_PER_MINUTE = 6;

let redis: RunningRedis;
let standin: StandinSetup;
const connections: Redis[] = [];
const apps: TestApp[] = [];
const clients: (OpenAI & { close(): Promise<void> })[] = [];
const logger = new CaptureLogger();
let caller: IssuedCertificate;

function options(store: RedisBudgetStore, onStoreError: 'open' | 'closed'): LlmRelayModuleOptions {
  return {
    upstreams: { llm: {} },
    models: { chat: { upstream: 'llm', model: 'standin-chat' } },
    access: { '*': [{}] },
    budgets: {
      store,
      perPrincipal: { requestsPerMinute: REQUESTS_PER_MINUTE, tokensPerMinute: 1_000_000 },
      onStoreError,
    },
  };
}

async function relay(onStoreError: 'open' | 'closed'): Promise<TestApp> {
  const connection = redis.client();
  connections.push(connection);
  // The caller's clock: both relays count in the same minute window as the test.
  const store = new RedisBudgetStore({ client: connection, clock: 'caller', commandTimeoutMs: 500 });
  const app = await startRelayApp(
    relayAppModule({
      upstream: { upstreams: { llm: standin.upstream() } },
      relay: options(store, onStoreError),
      audit: new CaptureSink(),
    }),
    standin.pki,
    logger,
  );
  apps.push(app);
  return app;
}

function chat(app: TestApp): Promise<unknown> {
  const c = sdk(app, { client: caller });
  clients.push(c);
  return c.chat.completions.create({
    model: 'chat',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 2,
  });
}

async function outcome(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError && typeof err.status === 'number') return err.status;
    throw err;
  }
}

let a: TestApp;
let b: TestApp;
let open: TestApp;

beforeAll(async () => {
  redis = await startRedis();
  standin = await startStandin();
  caller = await workload(standin.pki, 'shared-caller');
  a = await relay('closed');
  b = await relay('closed');
  open = await relay('open');
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(apps.map((app) => app.close()));
  for (const c of connections) c.disconnect();
  await redis?.stop();
  await standin?.standin.close();
});

describe('two relays, one Redis', () => {
  it('share one request budget: the calls across both stop at the limit, wherever they land', async () => {
    // Budgets count per UTC minute: start early in a minute, so all the calls share one window.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 15_000) await sleep(left + 50);
    const statuses: number[] = [];
    // Alternate between the relays; every call goes through the SDK.
    for (let i = 0; i < REQUESTS_PER_MINUTE + 4; i++) statuses.push(await outcome(chat(i % 2 === 0 ? a : b)));
    expect(statuses).toEqual([...Array<number>(REQUESTS_PER_MINUTE).fill(200), 429, 429, 429, 429]);
  });

  it('the refusal names the request limit, with OpenAI headers', async () => {
    const c = sdk(b, { client: caller });
    clients.push(c);
    try {
      await c.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
      expect.unreachable('the budget is spent');
    } catch (err) {
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      const e = err as InstanceType<typeof OpenAI.RateLimitError>;
      expect(e).toMatchObject({ code: 'ERR_LLM_REQUESTS_EXCEEDED', type: 'requests' });
      expect(e.headers?.get('x-ratelimit-limit-requests')).toBe(String(REQUESTS_PER_MINUTE));
      expect(e.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('Redis unreachable', () => {
  beforeAll(async () => {
    await redis.stop();
  });

  it('refuses with 503 ERR_BUDGET_STORE_UNAVAILABLE by default, without calling the upstream', async () => {
    const before = standin.standin.stats.requests;
    const c = sdk(a, { client: caller });
    clients.push(c);
    try {
      await c.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
      expect.unreachable('fail closed');
    } catch (err) {
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
      expect(err).toMatchObject({ status: 503, code: 'ERR_BUDGET_STORE_UNAVAILABLE', type: 'server_error' });
    }
    expect(standin.standin.stats.requests).toBe(before);
  });

  it("with onStoreError: 'open', the call goes through uncounted, and that is logged", async () => {
    logger.lines.length = 0;
    expect(await outcome(chat(open))).toBe(200);
    expect(logger.lines.some((l) => l.includes('let through uncounted'))).toBe(true);
  });
});
