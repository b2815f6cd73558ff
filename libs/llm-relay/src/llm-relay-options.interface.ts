import type { AuditSink } from '@inference-shield/identity';
import type { BudgetLimits, BudgetStore } from './budget/budget-store.interface.js';

/** The OpenAI routes a model can be served on. */
export type RelayEndpoint = 'chat' | 'responses' | 'embeddings';

/** One upstream the relay calls: an upstream configured in `UpstreamModule`, by name. */
export interface RelayUpstreamOptions {
  /**
   * Send the signed caller assertion of `UpstreamModule`'s `callerAssertion` with every call
   * (default `false`). Needs `callerAssertion` configured there.
   */
  readonly assertCaller?: boolean;
}

/** One public model name of the catalogue. */
export interface RelayModelOptions {
  /** The upstream serving it (a name of `upstreams`). */
  readonly upstream: string;
  /** The upstream's name for this model; default: the public name. */
  readonly model?: string;
  /** The routes it is served on; default all three. */
  readonly endpoints?: readonly RelayEndpoint[];
  /**
   * Output tokens counted before a call that sets no `max_tokens` / `max_completion_tokens` /
   * `max_output_tokens`; default 1024.
   */
  readonly defaultMaxTokens?: number;
  /** `owned_by` in `/v1/models`; default `"inference-shield"`. */
  readonly ownedBy?: string;
}

/**
 * One way to be allowed a model. Every listed condition must hold (AND); a model lists several
 * rules for OR. An empty rule `{}` admits any authenticated caller.
 */
export interface RelayAccessRule {
  /** Token scopes the caller must all hold. */
  readonly scopes?: readonly string[];
  /** Roles (identity's `roleClaimPath`, default `roles`) the caller must all hold. */
  readonly roles?: readonly string[];
  /** The caller's SPIFFE ID (mTLS) must be one of these. */
  readonly spiffeIds?: readonly string[];
  /** The token's OAuth client (`client_id`, else `azp`) must be one of these. */
  readonly clients?: readonly string[];
}

/** Token and request budgets, counted per principal (and, for listed models, per principal and model). */
export interface RelayBudgetOptions {
  /** Where budgets are counted; default one in-memory store for this process. Replicas share a `RedisBudgetStore`. */
  readonly store?: BudgetStore;
  /** Limits of each principal across every model. */
  readonly perPrincipal?: BudgetLimits;
  /** Limits of each principal on one model (public name), on top of `perPrincipal`. */
  readonly perModel?: Readonly<Record<string, BudgetLimits>>;
  /**
   * When the store fails (Redis unreachable): `'closed'` (default) refuses with
   * `503 ERR_BUDGET_STORE_UNAVAILABLE`; `'open'` lets the call through uncounted, and logs it.
   */
  readonly onStoreError?: 'closed' | 'open';
  /** Tokens asked of the store each time a stream outgrows what it reserved; default 256. */
  readonly streamBlockTokens?: number;
}

/** Where one usage event per call goes. */
export interface RelayUsageOptions {
  /**
   * Default: `IdentityModule`'s audit sink (when present). Events are {@link LlmUsageEvent}s,
   * a superset of `AuditEvent`.
   */
  readonly sink?: AuditSink;
}

/** Options of `LlmRelayModule.forRoot`. */
export interface LlmRelayModuleOptions {
  /** Upstreams by their `UpstreamModule` name. */
  readonly upstreams: Readonly<Record<string, RelayUpstreamOptions>>;
  /** The catalogue: public model name → upstream and upstream model. */
  readonly models: Readonly<Record<string, RelayModelOptions>>;
  /**
   * Who may use each model: public model name (or `"*"` for every model not listed) → rules
   * (OR). A model with no rules, and no `"*"`, stops the app at start-up.
   */
  readonly access: Readonly<Record<string, readonly RelayAccessRule[]>>;
  readonly budgets?: RelayBudgetOptions;
  readonly usage?: RelayUsageOptions;
  /** Largest request body the relay forwards, in bytes (after its rewrite); default 1 MiB. */
  readonly maxRequestBytes?: number;
  /** Largest non-streamed upstream answer read, in bytes; default 32 MiB. */
  readonly maxResponseBytes?: number;
}

/** A model after start-up parsing. */
export interface ResolvedRelayModel {
  readonly id: string;
  readonly upstream: string;
  readonly upstreamModel: string;
  readonly endpoints: ReadonlySet<RelayEndpoint>;
  readonly defaultMaxTokens: number;
  readonly ownedBy: string;
  readonly rules: readonly ResolvedAccessRule[];
  /** Budget limits of this model per principal, when configured. */
  readonly limits?: BudgetLimits;
  /** `"model":"<upstream model>"` as the upstream writes it, and its public replacement. */
  readonly upstreamModelField: string;
  readonly publicModelField: string;
  /** The `/v1/models` entry, serialised once. */
  readonly listing: Readonly<{ id: string; object: 'model'; created: number; owned_by: string }>;
}

/** An access rule after parsing. */
export interface ResolvedAccessRule {
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly spiffeIds?: ReadonlySet<string>;
  readonly clients?: ReadonlySet<string>;
}

/** The module options after parsing: frozen, every default filled in. */
export interface ResolvedLlmRelayOptions {
  readonly upstreams: Readonly<Record<string, Required<RelayUpstreamOptions>>>;
  readonly models: ReadonlyMap<string, ResolvedRelayModel>;
  readonly budgets: {
    readonly store?: BudgetStore;
    readonly perPrincipal?: BudgetLimits;
    readonly onStoreError: 'closed' | 'open';
    readonly streamBlockTokens: number;
  };
  readonly usageSink?: AuditSink;
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
}
