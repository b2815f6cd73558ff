/**
 * `@inference-shield/llm-relay`: an OpenAI-compatible, identity-aware relay for hosted and internal
 * LLMs: per-caller model access, token budgets that hold mid-stream, one usage event per call.
 */
/** The module: mount the relay's `/v1` routes. */
export { LlmRelayModule } from './llm-relay.module.js';
/** Its options. */
export type {
  LlmRelayModuleOptions,
  RelayAccessRule,
  RelayBudgetOptions,
  RelayEndpoint,
  RelayModelOptions,
  RelayUpstreamOptions,
  RelayUsageOptions,
} from './llm-relay-options.interface.js';
/** The usage event recorded once per call. */
export type { LlmUsageEvent, LlmUsageOutcome } from './usage-event.js';
/** OpenAI's error body, as the relay answers every refusal. */
export type { OpenAiErrorBody } from './openai-error.js';
/** Budget stores: one process (memory) or replicas (Redis), and the contract between them and the relay. */
export { MemoryBudgetStore, type MemoryBudgetStoreOptions } from './budget/memory-budget.store.js';
export { RedisBudgetStore, type RedisBudgetStoreOptions } from './budget/redis-budget.store.js';
export type {
  BudgetDecision,
  BudgetExceeded,
  BudgetLimits,
  BudgetSnapshot,
  BudgetStore,
} from './budget/budget-store.interface.js';
/** The token estimate a call is reserved with before it goes upstream. */
export { estimateTokens } from './budget/token-estimate.js';
