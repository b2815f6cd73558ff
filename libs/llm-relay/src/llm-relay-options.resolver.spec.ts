import { describe, expect, it } from 'vitest';
import type { LlmRelayModuleOptions } from './llm-relay-options.interface.js';
import { budgetsEnabled, resolveLlmRelayOptions } from './llm-relay-options.resolver.js';

const base = (): Record<string, unknown> => ({
  upstreams: { llm: {} },
  models: { chat: { upstream: 'llm', model: 'gpt-x' } },
  access: { chat: [{ scopes: ['llm:chat'] }] },
});

const resolve = (patch: Record<string, unknown>) =>
  resolveLlmRelayOptions({ ...base(), ...patch } as unknown as LlmRelayModuleOptions);

describe('resolveLlmRelayOptions', () => {
  it('fills defaults and freezes', () => {
    const o = resolve({});
    const m = o.models.get('chat');
    expect(m).toMatchObject({
      upstream: 'llm',
      upstreamModel: 'gpt-x',
      defaultMaxTokens: 1024,
      ownedBy: 'inference-shield',
      upstreamModelField: '"model":"gpt-x"',
      publicModelField: '"model":"chat"',
    });
    expect([...(m?.endpoints ?? [])]).toEqual(['chat', 'responses', 'embeddings']);
    expect(o.budgets).toMatchObject({ onStoreError: 'closed', streamBlockTokens: 256 });
    expect(o.maxRequestBytes).toBe(1024 * 1024);
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(m)).toBe(true);
    expect(budgetsEnabled(o)).toBe(false);
  });

  it('a "*" rule covers the models not listed; per-model limits enable budgets', () => {
    const o = resolve({
      models: { a: { upstream: 'llm' }, b: { upstream: 'llm' } },
      access: { '*': [{}], a: [{ roles: ['admin'] }] },
      budgets: { perModel: { b: { tokensPerDay: 10 } } },
    });
    expect(o.models.get('a')?.rules).toEqual([{ scopes: [], roles: ['admin'] }]);
    expect(o.models.get('b')?.rules).toEqual([{ scopes: [], roles: [] }]);
    expect(o.models.get('b')?.limits).toEqual({ tokensPerDay: 10 });
    expect(budgetsEnabled(o)).toBe(true);
  });

  it.each([
    ['an unknown key', { extra: 1 }, /unknown option "extra"/],
    ['no upstream', { upstreams: {} }, /"upstreams" must name at least one upstream/],
    ['a bad assertCaller', { upstreams: { llm: { assertCaller: 'yes' } } }, /upstreams\.llm\.assertCaller/],
    [
      'a model on an unknown upstream',
      { models: { chat: { upstream: 'other' } } },
      /"other", which is not in "upstreams"/,
    ],
    [
      'a model name with a slash',
      { models: { 'a/b': { upstream: 'llm' } }, access: { '*': [{}] } },
      /invalid model name/,
    ],
    ['no models', { models: {}, access: {} }, /"models" must hold at least one model/],
    ['an unknown endpoint', { models: { chat: { upstream: 'llm', endpoints: ['audio'] } } }, /endpoints/],
    [
      'a zero defaultMaxTokens',
      { models: { chat: { upstream: 'llm', defaultMaxTokens: 0 } } },
      /defaultMaxTokens/,
    ],
    ['a model with no access rules', { access: {} }, /model "chat" has no access rules/],
    ['empty rules', { access: { chat: [] } }, /non-empty array of access rules/],
    ['an unknown rule key', { access: { chat: [{ scope: ['x'] }] } }, /unknown option "scope"/],
    ['a SPIFFE ID that is not one', { access: { chat: [{ spiffeIds: ['https://x'] }] } }, /spiffe:\/\/ IDs/],
    [
      'access naming an unknown model',
      { access: { chat: [{}], other: [{}] } },
      /"other", which is not in "models"/,
    ],
    ['a limit of zero', { budgets: { perPrincipal: { tokensPerMinute: 0 } } }, /tokensPerMinute/],
    ['limits that set nothing', { budgets: { perPrincipal: {} } }, /sets no limit/],
    [
      'perModel on an unknown model',
      { budgets: { perModel: { x: { tokensPerDay: 1 } } } },
      /"x", which is not in "models"/,
    ],
    ['a bad onStoreError', { budgets: { onStoreError: 'ignore' } }, /onStoreError/],
    ['a store that is not one', { budgets: { store: {} } }, /must be a BudgetStore/],
    ['a sink without record()', { usage: { sink: {} } }, /record\(event\)/],
    ['a tiny maxRequestBytes', { maxRequestBytes: 10 }, /maxRequestBytes/],
  ])('refuses %s, naming the field', (_name, patch, message) => {
    expect(() => resolve(patch)).toThrow(TypeError);
    expect(() => resolve(patch)).toThrow(message);
  });
});
