/**
 * The relay through the real `openai` SDK (6.x), unchanged, against the stand-in hosted LLM over
 * mTLS: every route streamed and not, listing filtered per caller, forbidden and unknown models,
 * the upstream's own refusals, budgets refused before the call and a stream cut by its budget, the
 * headers the upstream received, and one usage event per call.
 */
import { once } from 'node:events';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IssuedCertificate } from '@inference-shield/dev-pki';
import type { LlmRelayModuleOptions } from '@inference-shield/llm-relay';
import { complete, countPromptTokens, embed } from '../../apps/llm-standin/src/standin-model.js';
import type { StandinCancellation } from '../../apps/llm-standin/src/llm-standin.server.js';
import { CaptureLogger, type TestApp } from '../support/harness.js';
import {
  API_KEY,
  CaptureSink,
  relayAppModule,
  sdk,
  startRelayApp,
  startStandin,
  workload,
  type StandinSetup,
} from './support/relay-fixture.js';

const PROMPT = 'PROMPT-SENTINEL-5be1 is the channel encrypted?';
const ASSERTION_HEADER = 'x-shield-caller-assertion';

let hosted: StandinSetup;
let slow: StandinSetup;
let app: TestApp;
const audit = new CaptureSink();
const logger = new CaptureLogger();
let alice: IssuedCertificate;
let bob: IssuedCertificate;
let admin: IssuedCertificate;
let carol: IssuedCertificate;
let dave: IssuedCertificate;
const clients: (OpenAI & { close(): Promise<void> })[] = [];

const ID = (name: string): string => `spiffe://shield.local/${name}`;

function relayOptions(): LlmRelayModuleOptions {
  return {
    upstreams: { llm: { assertCaller: true }, internal: {} },
    models: {
      'chat-fast': { upstream: 'llm', model: 'standin-chat', endpoints: ['chat', 'responses'] },
      embed: { upstream: 'llm', model: 'standin-embed', endpoints: ['embeddings'] },
      'secret-model': { upstream: 'llm', model: 'standin-chat' },
      ghost: { upstream: 'llm', model: 'no-such-upstream-model-7c1' },
      'slow-chat': { upstream: 'internal', model: 'standin-chat', endpoints: ['chat'], defaultMaxTokens: 64 },
      'long-chat': {
        upstream: 'internal',
        model: 'standin-long',
        endpoints: ['chat', 'responses'],
        defaultMaxTokens: 100,
      },
      busy: { upstream: 'llm', model: 'standin-long' },
    },
    access: {
      'chat-fast': [{ spiffeIds: [ID('alice'), ID('admin')] }],
      embed: [{}],
      'secret-model': [{ spiffeIds: [ID('admin')] }],
      ghost: [{ spiffeIds: [ID('alice')] }],
      'slow-chat': [{ spiffeIds: [ID('alice'), ID('carol')] }],
      'long-chat': [{ spiffeIds: [ID('dave')] }],
      busy: [{ spiffeIds: [ID('alice')] }],
    },
    budgets: {
      perPrincipal: { requestsPerMinute: 1000, tokensPerMinute: 1_000_000 },
      perModel: { 'slow-chat': { tokensPerMinute: 150 }, 'long-chat': { tokensPerMinute: 300 } },
      streamBlockTokens: 32,
    },
  };
}

function client(who: Parameters<typeof sdk>[1]): OpenAI {
  const c = sdk(app, who);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  hosted = await startStandin();
  slow = await startStandin({ tokenDelayMs: 15 }, hosted.pki);
  const module = relayAppModule({
    upstream: {
      upstreams: { llm: hosted.upstream(), internal: slow.upstream() },
      callerAssertion: { issuer: 'spiffe://shield.local/relay-test', caller: () => undefined },
    },
    relay: relayOptions,
    audit,
  });
  app = await startRelayApp(module, hosted.pki, logger);
  alice = await workload(hosted.pki, 'alice');
  bob = await workload(hosted.pki, 'bob');
  admin = await workload(hosted.pki, 'admin');
  carol = await workload(hosted.pki, 'carol');
  dave = await workload(hosted.pki, 'dave');
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app?.close();
  await hosted?.standin.close();
  await slow?.standin.close();
});

async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error('expected an APIError');
}

describe('models: listed per caller', () => {
  it.each([
    ['alice', ['busy', 'chat-fast', 'embed', 'ghost', 'slow-chat']],
    ['bob', ['embed']],
    ['admin', ['chat-fast', 'embed', 'secret-model']],
  ])('%s sees only the models it may use', async (name, expected) => {
    const who = { alice, bob, admin }[name as 'alice' | 'bob' | 'admin'];
    const list = await client({ client: who }).models.list();
    expect(list.data.map((m) => m.id).sort()).toEqual(expected);
    for (const m of list.data) expect(m).toMatchObject({ object: 'model', owned_by: 'inference-shield' });
  });

  it('retrieves a model it may use; a forbidden one is 404 like an unknown one', async () => {
    const openai = client({ client: alice });
    await expect(openai.models.retrieve('chat-fast')).resolves.toMatchObject({ id: 'chat-fast' });
    const forbidden = await apiError(openai.models.retrieve('secret-model'));
    const unknown = await apiError(openai.models.retrieve('no-such-model'));
    for (const e of [forbidden, unknown]) {
      expect(e).toBeInstanceOf(OpenAI.NotFoundError);
      expect(e.code).toBe('ERR_LLM_MODEL_NOT_FOUND');
      expect(e.type).toBe('invalid_request_error');
    }
  });

  it('without a verified caller: 401 in OpenAI shape', async () => {
    const e = await apiError(client({}).models.list());
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(e.error).toMatchObject({ type: 'authentication_error' });
    expect(String(e.code)).toMatch(/^ERR_/);
  });

  // A POST with a body and no credential is refused by IdentityModule on its headers, before the
  // body is read and before any filter runs: still in OpenAI's shape.
  it.each([
    [
      'chat',
      (c: OpenAI) =>
        c.chat.completions.create({ model: 'chat-fast', messages: [{ role: 'user', content: PROMPT }] }),
    ],
    ['embeddings', (c: OpenAI) => c.embeddings.create({ model: 'embed', input: PROMPT })],
  ])('a %s POST without a credential: 401 in OpenAI shape, refused on its headers', async (_n, call) => {
    const e = await apiError(call(client({})));
    expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(e.error).toEqual({
      message: expect.any(String) as string,
      type: 'authentication_error',
      param: null,
      // This app admits mTLS callers too: with neither credential, the first alternative's code.
      code: expect.stringMatching(/^ERR_(TOKEN|CLIENT_CERT)_MISSING$/) as string,
    });
    expect(e.headers?.get('connection')).toBe('close');
  });
});

describe('chat completions', () => {
  it('non-streamed: the upstream answer, renamed to the public model, with usage', async () => {
    const messages = [{ role: 'user' as const, content: PROMPT }];
    const res = await client({ client: alice }).chat.completions.create({ model: 'chat-fast', messages });
    const expected = complete('standin-chat', messages);
    expect(res.model).toBe('chat-fast');
    expect(res.choices[0]?.message.content).toBe(expected.tokens.join(' '));
    expect(res.usage?.prompt_tokens).toBe(countPromptTokens(messages));
  });

  it('passes the fields the SDK sends every day (top_p, n, user, max_completion_tokens, content parts, developer role)', async () => {
    const res = await client({ client: alice }).chat.completions.create({
      model: 'chat-fast',
      messages: [
        { role: 'developer', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: PROMPT }] },
      ],
      top_p: 0.9,
      n: 1,
      user: 'end-user-42',
      max_completion_tokens: 12,
      temperature: 0.2,
      seed: 7,
    });
    expect(res.choices[0]?.finish_reason).toBe('length');
    expect(res.usage?.completion_tokens).toBe(12);
  });

  it.each([false, true])(
    'streamed (include_usage: %s): the text, and the usage chunk only when asked',
    async (include) => {
      const messages = [{ role: 'user' as const, content: `${PROMPT} stream` }];
      const stream = await client({ client: alice }).chat.completions.create({
        model: 'chat-fast',
        messages,
        stream: true,
        max_tokens: 20,
        ...(include ? { stream_options: { include_usage: true } } : {}),
      });
      let text = '';
      const usages: unknown[] = [];
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        expect(chunk.model).toBe('chat-fast');
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usages.push(chunk.usage);
      }
      expect(text).toBe(complete('standin-chat', messages, 20).tokens.join(' '));
      expect(finish).toBe('length');
      expect(usages).toEqual(include ? [expect.objectContaining({ completion_tokens: 20 })] : []);
      // The relay asked the upstream for usage either way: the event counts real tokens.
      const event = audit.usage().at(-1);
      expect(event).toMatchObject({ model: 'chat-fast', completionTokens: 20, outcome: 'ok', stream: true });
      expect(event?.['estimated']).toBeUndefined();
    },
  );

  it('a forbidden model: 404 model not found to the caller, the real reason in the audit', async () => {
    const e = await apiError(
      client({ client: bob }).chat.completions.create({
        model: 'secret-model',
        messages: [{ role: 'user', content: PROMPT }],
      }),
    );
    expect(e).toBeInstanceOf(OpenAI.NotFoundError);
    expect(e.code).toBe('ERR_LLM_MODEL_NOT_FOUND');
    expect(e.param).toBe('model');
    expect(audit.usage().at(-1)).toMatchObject({
      decision: 'deny',
      subject: ID('bob'),
      code: 'ERR_LLM_MODEL_FORBIDDEN',
      model: 'secret-model',
      status: 404,
    });
  });

  it('an unknown model: 404, and the name is not recorded', async () => {
    const e = await apiError(
      client({ client: alice }).chat.completions.create({
        model: 'gpt-unknown',
        messages: [{ role: 'user', content: PROMPT }],
      }),
    );
    expect(e.status).toBe(404);
    expect(e.code).toBe('ERR_LLM_MODEL_NOT_FOUND');
    expect(audit.usage().at(-1)).toMatchObject({ code: 'ERR_LLM_MODEL_NOT_FOUND', model: undefined });
  });

  it("the upstream's own 404 model_not_found passes on, in our words, without the upstream's model name", async () => {
    const e = await apiError(
      client({ client: alice }).chat.completions.create({
        model: 'ghost',
        messages: [{ role: 'user', content: PROMPT }],
      }),
    );
    expect(e).toBeInstanceOf(OpenAI.NotFoundError);
    expect(e.code).toBe('model_not_found');
    expect(e.message).toContain('ghost');
    expect(JSON.stringify(e.error)).not.toContain('no-such-upstream-model');
    expect(audit.usage().at(-1)).toMatchObject({ code: 'ERR_LLM_UPSTREAM_REFUSED', status: 404 });
  });

  it('a body the relay cannot read: 400 in OpenAI shape, naming the field', async () => {
    const e = await apiError(
      client({ client: alice }).chat.completions.create({
        model: 'chat-fast',
        messages: [],
      }),
    );
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect(e).toMatchObject({ code: 'ERR_LLM_INVALID_REQUEST', param: 'messages' });
  });
});

describe('the upstream over its own limit', () => {
  it('an upstream 429 reaches the SDK as a RateLimitError, its Retry-After kept, its code passed on', async () => {
    hosted.standin.setRateLimited({ models: ['standin-long'], retryAfterSeconds: 7 });
    try {
      const e = await apiError(
        client({ client: alice }).chat.completions.create({
          model: 'busy',
          messages: [{ role: 'user', content: PROMPT }],
        }),
      );
      expect(e).toBeInstanceOf(OpenAI.RateLimitError);
      expect(e).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
      expect(e.headers?.get('retry-after')).toBe('7');
      // Our words, not the upstream's (which names its organisation and model).
      expect(e.message).not.toMatch(/standin-org|standin-long/);
      expect(audit.usage().at(-1)).toMatchObject({ code: 'ERR_LLM_UPSTREAM_REFUSED', status: 429 });
    } finally {
      hosted.standin.setRateLimited(undefined);
    }
  });
});

describe('responses API', () => {
  it('non-streamed: the output text, renamed, with usage', async () => {
    const res = await client({ client: alice }).responses.create({
      model: 'chat-fast',
      input: PROMPT,
      max_output_tokens: 16,
    });
    expect(res.model).toBe('chat-fast');
    expect(res.output_text.split(' ')).toHaveLength(16);
    expect(res.usage?.output_tokens).toBe(16);
    expect(audit.usage().at(-1)).toMatchObject({
      route: 'POST /v1/responses',
      completionTokens: 16,
      outcome: 'ok',
      stream: false,
    });
  });

  it('streamed: the events, the text, and usage counted from response.completed', async () => {
    const stream = await client({ client: alice }).responses.create({
      model: 'chat-fast',
      input: [{ role: 'user', content: PROMPT }],
      max_output_tokens: 12,
      stream: true,
    });
    let text = '';
    const types: string[] = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.created') expect(ev.response.model).toBe('chat-fast');
    }
    expect(text.split(' ')).toHaveLength(12);
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toMatch(/^response\.(completed|incomplete)$/);
    expect(audit.usage().at(-1)).toMatchObject({ completionTokens: 12, stream: true, outcome: 'ok' });
  });

  it('a stream past its budget ends with response.incomplete (max_output_tokens), the upstream cancelled', async () => {
    const cancelled = once(slow.standin.events, 'cancel') as Promise<[StandinCancellation]>;
    const stream = await client({ client: dave }).responses.create({
      model: 'long-chat',
      input: 'a very long answer please',
      stream: true,
    });
    const types: string[] = [];
    let last: OpenAI.Responses.ResponseStreamEvent | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      last = ev;
    }
    expect(last?.type).toBe('response.incomplete');
    if (last?.type === 'response.incomplete') {
      expect(last.response.incomplete_details?.reason).toBe('max_output_tokens');
      expect(last.response.model).toBe('long-chat');
    }
    expect(types.filter((t) => t === 'response.output_text.delta').length).toBeGreaterThan(5);
    const [cancel] = await cancelled;
    expect(cancel.tokensSent).toBeLessThan(1000);
    await vi.waitFor(() => expect(audit.usage().at(-1)?.['outcome']).toBe('cut'));
    expect(audit.usage().at(-1)).toMatchObject({
      subject: ID('dave'),
      model: 'long-chat',
      route: 'POST /v1/responses',
    });
  });
});

describe('embeddings', () => {
  it('served, renamed, and counted', async () => {
    const res = await client({ client: bob }).embeddings.create({
      model: 'embed',
      input: ['hello', 'world'],
      encoding_format: 'float',
    });
    expect(res.model).toBe('embed');
    expect(res.data).toHaveLength(2);
    expect(res.data[0]?.embedding).toEqual(Array.from(embed('hello', 8)));
    expect(audit.usage().at(-1)).toMatchObject({
      model: 'embed',
      upstream: 'llm',
      outcome: 'ok',
      promptTokens: 2,
    });
  });

  it('a chat model is not an embedding model: 404', async () => {
    const e = await apiError(client({ client: alice }).embeddings.create({ model: 'chat-fast', input: 'x' }));
    expect(e.status).toBe(404);
  });
});

describe('what goes upstream', () => {
  it("never the caller's Authorization, DPoP, Cookie or API-key headers; our key and the caller assertion", async () => {
    const before = hosted.standin.requests.length;
    await client({
      client: alice,
      headers: {
        cookie: 'session=CALLER-COOKIE-SENTINEL',
        dpop: 'CALLER-DPOP-SENTINEL',
        'x-api-key': 'CALLER-KEY-SENTINEL',
        'proxy-authorization': 'Basic CALLER-PROXY-SENTINEL',
        'openai-organization': 'caller-org',
      },
    }).chat.completions.create({ model: 'chat-fast', messages: [{ role: 'user', content: PROMPT }] });
    const seen = hosted.standin.requests.slice(before);
    expect(seen).toHaveLength(1);
    const headers = seen[0]?.headers ?? {};
    expect(headers['authorization']).toBe(`Bearer ${API_KEY}`);
    for (const name of ['cookie', 'dpop', 'x-api-key', 'proxy-authorization', 'openai-organization'])
      expect(headers[name]).toBeUndefined();
    expect(JSON.stringify(headers)).not.toMatch(/SENTINEL/);
    // The signed caller assertion names the verified caller.
    const assertion = String(headers[ASSERTION_HEADER] ?? '');
    const payload = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString()) as {
      sub?: string;
    };
    expect(payload.sub).toBe(ID('alice'));
  });

  it('an upstream without assertCaller gets no assertion', async () => {
    const before = slow.standin.requests.length;
    await client({ client: alice }).chat.completions.create({
      model: 'slow-chat',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
    });
    const headers = slow.standin.requests.slice(before)[0]?.headers ?? {};
    expect(headers[ASSERTION_HEADER]).toBeUndefined();
    expect(headers['authorization']).toBe(`Bearer ${API_KEY}`);
  });
});

describe('budgets', () => {
  it('x-ratelimit-* headers on an answer, with OpenAI names', async () => {
    const { response } = await client({ client: alice })
      .chat.completions.create({
        model: 'chat-fast',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 2,
      })
      .withResponse();
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('1000');
    expect(Number(response.headers.get('x-ratelimit-remaining-requests'))).toBeLessThan(1000);
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('1000000');
    expect(response.headers.get('x-ratelimit-reset-tokens')).toMatch(/^\d/);
  });

  it('a prompt that cannot fit the remaining budget is refused before the call: 429 with Retry-After', async () => {
    const before = slow.standin.stats.requests;
    const e = await apiError(
      client({ client: carol }).chat.completions.create({
        model: 'slow-chat',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 1000,
      }),
    );
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect(e).toMatchObject({ code: 'ERR_LLM_TOKENS_EXCEEDED', type: 'tokens' });
    expect(Number(e.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(e.headers?.get('x-ratelimit-limit-tokens')).toBe('150');
    expect(slow.standin.stats.requests).toBe(before);
  });

  it('a stream that runs past its budget ends cleanly (finish_reason "length", then [DONE]) and the upstream is cancelled', async () => {
    // Budget windows are whole UTC minutes: a stream that crosses into the next minute is granted
    // that minute's budget and is rightly not cut. Start with time to spare in this one.
    const leftInMinuteMs = 60_000 - (Date.now() % 60_000);
    if (leftInMinuteMs < 15_000) await new Promise((r) => setTimeout(r, leftInMinuteMs + 100));
    const cancelled = once(slow.standin.events, 'cancel') as Promise<[StandinCancellation]>;
    const stream = await client({ client: carol }).chat.completions.create({
      model: 'slow-chat',
      messages: [{ role: 'user', content: 'tell me a long story' }],
      max_tokens: 100,
      stream: true,
    });
    let text = '';
    const finishes: (string | null | undefined)[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
    }
    // The SDK saw a normal end: no error was thrown, the last choice finished for "length".
    expect(finishes).toEqual(['length']);
    const words = text.split(' ').length;
    expect(words).toBeGreaterThan(5);
    expect(words).toBeLessThan(100);
    const [cancel] = await cancelled;
    expect(cancel.tokensSent).toBeLessThan(100);
    // The event is recorded once the relay has settled the budget, just after the caller's end.
    await vi.waitFor(() => expect(audit.usage().at(-1)?.['outcome']).toBe('cut'));
    expect(audit.usage().at(-1)).toMatchObject({
      subject: ID('carol'),
      model: 'slow-chat',
      outcome: 'cut',
      code: 'ERR_LLM_TOKENS_EXCEEDED',
      estimated: true,
      status: 200,
    });
  });
});

describe('usage events and logs', () => {
  it('one event per call, with tokens and timings, never the prompt or the output', () => {
    const events = audit.usage();
    expect(events.length).toBeGreaterThan(10);
    for (const e of events) {
      expect(e).toMatchObject({ event: 'llm.usage' });
      expect(typeof e['durationMs']).toBe('number');
      expect(typeof e['status']).toBe('number');
    }
    const ok = events.find((e) => e['outcome'] === 'ok' && e['route'] === 'POST /v1/chat/completions');
    expect(ok).toMatchObject({ upstream: 'llm', method: 'mtls' });
    expect(typeof ok?.['ttftMs']).toBe('number');
    const all = [...audit.lines, ...logger.lines].join('\n');
    expect(all).not.toContain('PROMPT-SENTINEL');
    expect(all).not.toMatch(/SENTINEL/);
    // No word of any completion: the stand-in speaks "shield", "tensor", …; the prompt is ours.
    expect(all).not.toContain(complete('standin-chat', [{ role: 'user', content: PROMPT }]).tokens.join(' '));
  });
});
