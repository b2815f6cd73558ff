import { describe, expect, it } from 'vitest';
import type { ShieldPrincipal } from '@inference-shield/identity';
import { ShieldError } from '@inference-shield/core';
import type { BudgetDecision, BudgetLimits, BudgetStore } from './budget/budget-store.interface.js';
import { MemoryBudgetStore } from './budget/memory-budget.store.js';
import { BudgetGate, subjectOf } from './budget-gate.js';
import type { LlmRelayModuleOptions } from './llm-relay-options.interface.js';
import { resolveLlmRelayOptions } from './llm-relay-options.resolver.js';
import { RelayHttpError } from './openai-error.js';

const alice: ShieldPrincipal = {
  method: 'oidc',
  subject: 'alice',
  issuer: 'https://idp',
  scopes: [],
  claims: {},
};

function options(budgets: Record<string, unknown>) {
  return resolveLlmRelayOptions({
    upstreams: { llm: {} },
    models: { m: { upstream: 'llm' } },
    access: { '*': [{}] },
    budgets,
  } as unknown as LlmRelayModuleOptions);
}

/** A store whose every call fails, as RedisBudgetStore does when Redis is gone. */
class DownStore implements BudgetStore {
  reserve(): Promise<BudgetDecision> {
    return Promise.reject(new ShieldError('ERR_BUDGET_STORE_UNAVAILABLE'));
  }
  adjust(): Promise<BudgetDecision> {
    return Promise.reject(new ShieldError('ERR_BUDGET_STORE_UNAVAILABLE'));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Records what the gate asked of a real memory store. */
class Recording extends MemoryBudgetStore {
  readonly calls: string[] = [];
  override reserve(
    subject: string,
    limits: BudgetLimits,
    tokens: number,
    now: number,
  ): Promise<BudgetDecision> {
    this.calls.push(`reserve ${subject.split('\u0000').at(-1) ?? ''} ${tokens}`);
    return super.reserve(subject, limits, tokens, now);
  }
  override adjust(
    subject: string,
    limits: BudgetLimits,
    delta: number,
    now: number,
  ): Promise<BudgetDecision> {
    this.calls.push(`adjust ${subject.split('\u0000').at(-1) ?? ''} ${delta}`);
    return super.adjust(subject, limits, delta, now);
  }
}

describe('BudgetGate', () => {
  it('counts the model budget and the principal budget, grows and settles both', async () => {
    const store = new Recording();
    const o = options({
      store,
      perPrincipal: { tokensPerMinute: 1000 },
      perModel: { m: { tokensPerMinute: 500 } },
    });
    const model = o.models.get('m');
    if (model === undefined) throw new Error('no model');
    const gate = new BudgetGate(store, o);
    const r = await gate.reserve(alice, model, 100);
    expect(r?.held).toBe(100);
    expect(await r?.grow(50)).toBe(true);
    await r?.settle(120);
    await r?.settle(999); // once only
    expect(store.calls).toEqual([
      'reserve m 100',
      'reserve alice 100',
      'adjust m 50',
      'adjust alice 50',
      'adjust m -30',
      'adjust alice -30',
    ]);
    await store.close();
  });

  it('a refusal by the principal budget gives back what the model budget held: 429 tokens', async () => {
    const store = new Recording();
    const o = options({
      store,
      perPrincipal: { tokensPerMinute: 50 },
      perModel: { m: { tokensPerMinute: 500 } },
    });
    const model = o.models.get('m');
    if (model === undefined) throw new Error('no model');
    const err = await new BudgetGate(store, o).reserve(alice, model, 100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayHttpError);
    expect(err).toMatchObject({ status: 429, code: 'ERR_LLM_TOKENS_EXCEEDED' });
    expect((err as RelayHttpError).headers['retry-after']).toMatch(/^\d+$/);
    expect(store.calls).toEqual(['reserve m 100', 'reserve alice 100', 'adjust m -100']);
    await store.close();
  });

  it('a grow the store refuses is undone everywhere and reported false', async () => {
    const store = new Recording();
    const o = options({
      store,
      perPrincipal: { tokensPerMinute: 1000 },
      perModel: { m: { tokensPerMinute: 120 } },
    });
    const model = o.models.get('m');
    if (model === undefined) throw new Error('no model');
    const r = await new BudgetGate(store, o).reserve(alice, model, 100);
    expect(await r?.grow(50)).toBe(false);
    expect(r?.held).toBe(100);
    await store.close();
  });

  it.each([
    ['closed', 'a 503 ERR_BUDGET_STORE_UNAVAILABLE'],
    ['open', 'the call uncounted'],
  ] as const)('store down, onStoreError %s: %s', async (mode, _outcome) => {
    const o = options({ perPrincipal: { requestsPerMinute: 1 }, onStoreError: mode });
    const model = o.models.get('m');
    if (model === undefined) throw new Error('no model');
    const out = await new BudgetGate(new DownStore(), o).reserve(alice, model, 10).catch((e: unknown) => e);
    if (mode === 'closed') expect(out).toMatchObject({ status: 503, code: 'ERR_BUDGET_STORE_UNAVAILABLE' });
    else expect(out).toBeUndefined();
  });

  it('principals of different methods or issuers never share a subject', () => {
    expect(subjectOf(alice)).not.toBe(subjectOf({ ...alice, issuer: 'https://other' }));
    expect(subjectOf(alice)).not.toBe(subjectOf({ ...alice, method: 'mtls' }));
  });
});
