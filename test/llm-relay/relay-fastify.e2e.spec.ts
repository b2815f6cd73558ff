/**
 * The relay on Nest's Fastify adapter, through the real `openai` SDK: the same routes, streams and
 * OpenAI-shaped refusals as on Express (the relay writes Fastify's raw response after hijacking it).
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { complete } from '../../apps/llm-standin/src/standin-model.js';
import { startApp, type TestApp } from '../support/harness.js';
import {
  CaptureSink,
  relayAppModule,
  sdk,
  startStandin,
  workload,
  type StandinSetup,
} from './support/relay-fixture.js';

let standin: StandinSetup;
let app: TestApp;
const audit = new CaptureSink();
const clients: (OpenAI & { close(): Promise<void> })[] = [];

beforeAll(async () => {
  standin = await startStandin();
  app = await startApp(
    relayAppModule({
      upstream: { upstreams: { llm: standin.upstream() } },
      relay: {
        upstreams: { llm: {} },
        models: {
          chat: { upstream: 'llm', model: 'standin-chat' },
          secret: { upstream: 'llm', model: 'standin-chat' },
        },
        access: { chat: [{}], secret: [{ spiffeIds: ['spiffe://shield.local/nobody'] }] },
        budgets: { perPrincipal: { tokensPerMinute: 100_000 } },
      },
      audit,
    }),
    { pki: standin.pki, mtls: 'optional', adapter: 'fastify' },
  );
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app?.close();
  await standin?.standin.close();
});

async function caller(): Promise<OpenAI> {
  const c = sdk(app, { client: await workload(standin.pki, 'fastify-caller') });
  clients.push(c);
  return c;
}

describe('the relay on Fastify', () => {
  it('lists, completes and streams', async () => {
    const openai = await caller();
    expect((await openai.models.list()).data.map((m) => m.id)).toEqual(['chat']);
    const messages = [{ role: 'user' as const, content: 'fastify please' }];
    const res = await openai.chat.completions.create({ model: 'chat', messages });
    expect(res.choices[0]?.message.content).toBe(complete('standin-chat', messages).tokens.join(' '));
    const { response } = await openai.chat.completions
      .create({ model: 'chat', messages, max_tokens: 2 })
      .withResponse();
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
    const stream = await openai.chat.completions.create({
      model: 'chat',
      messages,
      stream: true,
      max_tokens: 9,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(complete('standin-chat', messages, 9).tokens.join(' '));
  });

  it('refuses in OpenAI shape: a forbidden model 404, no credential 401', async () => {
    const openai = await caller();
    const forbidden = await openai.chat.completions
      .create({ model: 'secret', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(OpenAI.NotFoundError);
    expect(forbidden).toMatchObject({ code: 'ERR_LLM_MODEL_NOT_FOUND', param: 'model' });
    const anonymous = sdk(app, {});
    clients.push(anonymous);
    const e = await anonymous.models.list().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((e as InstanceType<typeof OpenAI.AuthenticationError>).error).toMatchObject({
      type: 'authentication_error',
    });
  });
});
