/**
 * A misconfigured relay stops the app at start-up, naming what is wrong, through the real
 * bootstrap: an upstream UpstreamModule does not configure, a model with no access rules, an
 * unknown option. Nothing listens afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlmRelayModuleOptions } from '@inference-shield/llm-relay';
import { startApp } from '../support/harness.js';
import { CaptureSink, relayAppModule, startStandin, type StandinSetup } from './support/relay-fixture.js';

let standin: StandinSetup;

beforeAll(async () => {
  standin = await startStandin();
});

afterAll(async () => {
  await standin?.standin.close();
});

const good = (): LlmRelayModuleOptions => ({
  upstreams: { llm: {} },
  models: { chat: { upstream: 'llm', model: 'standin-chat' } },
  access: { chat: [{}] },
});

describe('the app refuses to start', () => {
  it.each([
    [
      'an upstream UpstreamModule does not configure',
      { ...good(), upstreams: { llm: {}, other: {} }, models: { chat: { upstream: 'other' } } },
      /upstream "other" is not configured in UpstreamModule \(configured: llm\)/,
    ],
    ['a model with no access rules', { ...good(), access: {} }, /model "chat" has no access rules/],
    ['an unknown option', { ...good(), budget: {} }, /unknown option "budget"/],
    [
      'per-model limits on an unknown model',
      { ...good(), budgets: { perModel: { gpt: { tokensPerDay: 1 } } } },
      /"budgets\.perModel" names "gpt"/,
    ],
  ])('%s', async (_name, relay, message) => {
    const start = startApp(
      relayAppModule({
        upstream: { upstreams: { llm: standin.upstream() } },
        relay: relay as LlmRelayModuleOptions,
        audit: new CaptureSink(),
      }),
      // Nest aborts the process on a provider error unless told to throw it.
      { pki: standin.pki, mtls: 'optional', nest: { abortOnError: false } },
    );
    await expect(start).rejects.toThrow(TypeError);
    await expect(start).rejects.toThrow(message);
  });

  it('the same options, corrected, start (the control)', async () => {
    const app = await startApp(
      relayAppModule({
        upstream: { upstreams: { llm: standin.upstream() } },
        relay: good(),
        audit: new CaptureSink(),
      }),
      { pki: standin.pki, mtls: 'optional' },
    );
    await app.close();
  });
});
