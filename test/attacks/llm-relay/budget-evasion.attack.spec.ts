/**
 * THREATS "relay: stream past the caller's token budget — ended cleanly mid-stream; upstream
 * request cancelled", and the ways a caller could try to spend more than its budget: not asking for
 * usage, many choices, output limits the estimate cannot read, a burst of parallel calls, hanging
 * up mid-stream. Real stand-in LLM, real `openai` SDK.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StandinCancellation } from '../../../apps/llm-standin/src/llm-standin.server.js';
import { type TestApp } from '../../support/harness.js';
import {
  CaptureSink,
  relayAppModule,
  sdk,
  startRelayApp,
  startStandin,
  workload,
  type StandinSetup,
} from '../../llm-relay/support/relay-fixture.js';

let standin: StandinSetup;
let app: TestApp;
const audit = new CaptureSink();
const clients: (OpenAI & { close(): Promise<void> })[] = [];

beforeAll(async () => {
  // Budgets count per UTC minute: start early in one, so each test's calls share a window.
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 20_000) await sleep(left + 50);
  standin = await startStandin({ tokenDelayMs: 10 });
  app = await startRelayApp(
    relayAppModule({
      upstream: { upstreams: { llm: standin.upstream() } },
      relay: {
        upstreams: { llm: {} },
        models: {
          long: { upstream: 'llm', model: 'standin-long', defaultMaxTokens: 50 },
          chat: { upstream: 'llm', model: 'standin-chat', defaultMaxTokens: 30 },
        },
        access: { '*': [{}] },
        budgets: { perPrincipal: { tokensPerMinute: 200 }, streamBlockTokens: 16 },
      },
      audit,
    }),
    standin.pki,
  );
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app?.close();
  await standin?.standin.close();
});

async function caller(name: string): Promise<OpenAI> {
  const c = sdk(app, { client: await workload(standin.pki, name) });
  clients.push(c);
  return c;
}

async function status(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return `${err.status ?? '?'} ${String(err.code)}`;
    throw err;
  }
}

describe('a stream past the budget', () => {
  it('is cut even though the caller never asked for usage: clean end, upstream cancelled', async () => {
    // Budgets count per UTC minute: a stream crossing into the next minute gets its budget too.
    const leftInMinuteMs = 60_000 - (Date.now() % 60_000);
    if (leftInMinuteMs < 15_000) await new Promise((r) => setTimeout(r, leftInMinuteMs + 100));
    const openai = await caller('no-usage');
    const cancelled = once(standin.standin.events, 'cancel') as Promise<[StandinCancellation]>;
    const stream = await openai.chat.completions.create({
      model: 'long',
      messages: [{ role: 'user', content: 'go on forever' }],
      stream: true,
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.some((c) => c.usage)).toBe(false);
    const [cancel] = await cancelled;
    expect(cancel.tokensSent).toBeLessThan(1000);
    await vi.waitFor(() => expect(audit.usage().at(-1)?.['outcome']).toBe('cut'));
    // What the caller received fits the budget: the chunk that would run past it was not sent.
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    const prompt = Number(audit.usage().at(-1)?.['promptTokens']);
    expect(prompt + Math.ceil(Buffer.byteLength(text) / 4)).toBeLessThanOrEqual(200);
  });

  it('the next call of that caller is refused before the upstream is asked', async () => {
    const openai = await caller('no-usage');
    const before = standin.standin.stats.requests;
    expect(
      await status(
        openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }),
      ),
    ).toBe('429 ERR_LLM_TOKENS_EXCEEDED');
    expect(standin.standin.stats.requests).toBe(before);
  });
});

describe('estimates the caller cannot shrink', () => {
  it('n choices multiply the output counted', async () => {
    const openai = await caller('many-choices');
    expect(
      await status(
        openai.chat.completions.create({
          model: 'chat',
          messages: [{ role: 'user', content: 'x' }],
          max_tokens: 20,
          n: 16,
        }),
      ),
    ).toBe('429 ERR_LLM_TOKENS_EXCEEDED');
  });

  it.each([
    ['max_tokens as a string', { max_tokens: '1' }, 'max_tokens'],
    ['max_completion_tokens negative', { max_completion_tokens: -5 }, 'max_completion_tokens'],
    ['n as a string', { n: '2' }, 'n'],
  ])('%s: 400, never a call with no output counted', async (_name, extra, param) => {
    const openai = await caller('odd-limits');
    const before = standin.standin.stats.requests;
    const err = await openai.chat.completions
      .create({ model: 'chat', messages: [{ role: 'user', content: 'x' }], ...(extra as object) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ param });
    expect(standin.standin.stats.requests).toBe(before);
  });

  it('a burst of parallel calls cannot all pass: the reservations are atomic', async () => {
    const openai = await caller('burst');
    // Each call reserves about 40 tokens (prompt + 30 default): 200 allows 5 at most.
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        status(openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] })),
      ),
    );
    const ok = results.filter((r) => r === 200).length;
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThanOrEqual(5);
    expect(results.filter((r) => r !== 200).every((r) => r === '429 ERR_LLM_TOKENS_EXCEEDED')).toBe(true);
  });
});

describe('a caller hanging up mid-stream', () => {
  it('cancels the upstream request; the event says cancelled', async () => {
    const openai = await caller('hang-up');
    const cancelled = once(standin.standin.events, 'cancel') as Promise<[StandinCancellation]>;
    const stream = await openai.chat.completions.create({
      model: 'long',
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 40,
      stream: true,
    });
    let n = 0;
    for await (const _ of stream) {
      void _;
      if (++n === 3) break; // the SDK aborts its request
    }
    const [cancel] = await cancelled;
    expect(cancel.tokensSent).toBeLessThan(40);
    await vi.waitFor(() => expect(audit.usage().at(-1)?.['outcome']).toBe('cancelled'));
  });
});
