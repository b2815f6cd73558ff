import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  assertStringArray,
  describeValue,
} from '@inference-shield/core/internal';
import type { BudgetLimits, BudgetStore } from './budget/budget-store.interface.js';
import type {
  LlmRelayModuleOptions,
  RelayEndpoint,
  ResolvedAccessRule,
  ResolvedLlmRelayOptions,
  ResolvedRelayModel,
} from './llm-relay-options.interface.js';

const ENDPOINTS: readonly RelayEndpoint[] = ['chat', 'responses', 'embeddings'];
/** Public model names travel in URLs (`/v1/models/{id}`, one segment) and logs: plain characters only. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const DEFAULT_MAX_TOKENS = 1024;
const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;
const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
const DEFAULT_STREAM_BLOCK = 256;
/** `created` of every `/v1/models` entry: fixed, so listings are stable across replicas. */
const CREATED = 1_735_689_600;
const MAX_LIMIT = 1_000_000_000_000;

function resolveLimits(field: string, raw: unknown): BudgetLimits {
  assertKnownKeys(field, raw, ['requestsPerMinute', 'tokensPerMinute', 'tokensPerDay']);
  const out: { requestsPerMinute?: number; tokensPerMinute?: number; tokensPerDay?: number } = {};
  for (const key of ['requestsPerMinute', 'tokensPerMinute', 'tokensPerDay'] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    assertInteger(`${field}.${key}`, v, 1, MAX_LIMIT);
    out[key] = v;
  }
  if (Object.keys(out).length === 0) throw new TypeError(`"${field}" sets no limit`);
  return Object.freeze(out);
}

function resolveRule(field: string, raw: unknown): ResolvedAccessRule {
  assertKnownKeys(field, raw, ['scopes', 'roles', 'spiffeIds', 'clients']);
  const list = (key: string): readonly string[] | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    assertStringArray(`${field}.${key}`, v, { nonEmpty: true });
    return Object.freeze([...v]);
  };
  const spiffeIds = list('spiffeIds');
  for (const id of spiffeIds ?? []) {
    if (!id.startsWith('spiffe://') || id.length <= 'spiffe://'.length)
      throw new TypeError(`"${field}.spiffeIds" must hold spiffe:// IDs, got ${describeValue(id)}`);
  }
  const clients = list('clients');
  const rule: {
    scopes: readonly string[];
    roles: readonly string[];
    spiffeIds?: ReadonlySet<string>;
    clients?: ReadonlySet<string>;
  } = { scopes: list('scopes') ?? [], roles: list('roles') ?? [] };
  if (spiffeIds !== undefined) rule.spiffeIds = new Set(spiffeIds);
  if (clients !== undefined) rule.clients = new Set(clients);
  return Object.freeze(rule);
}

function resolveRules(field: string, raw: unknown): readonly ResolvedAccessRule[] {
  if (!Array.isArray(raw) || raw.length === 0)
    throw new TypeError(`"${field}" must be a non-empty array of access rules, got ${describeValue(raw)}`);
  return Object.freeze(raw.map((r, i) => resolveRule(`${field}[${i}]`, r)));
}

function isBudgetStore(value: unknown): value is BudgetStore {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  return typeof s.reserve === 'function' && typeof s.adjust === 'function' && typeof s.close === 'function';
}

/**
 * Check every option once, at start-up, and return them frozen with defaults filled in. A bad
 * field throws a `TypeError` naming it; unknown keys are refused.
 */
export function resolveLlmRelayOptions(raw: LlmRelayModuleOptions): ResolvedLlmRelayOptions {
  assertKnownKeys('LlmRelayModule options', raw, [
    'upstreams',
    'models',
    'access',
    'budgets',
    'usage',
    'maxRequestBytes',
    'maxResponseBytes',
  ]);
  const options = raw as LlmRelayModuleOptions & Record<string, unknown>;

  assertObject('upstreams', options.upstreams);
  const upstreams: Record<string, { assertCaller: boolean }> = {};
  for (const [name, u] of Object.entries(options.upstreams)) {
    assertKnownKeys(`upstreams.${name}`, u, ['assertCaller']);
    const assertCaller = (u as { assertCaller?: unknown }).assertCaller ?? false;
    assertBoolean(`upstreams.${name}.assertCaller`, assertCaller);
    upstreams[name] = Object.freeze({ assertCaller });
  }
  if (Object.keys(upstreams).length === 0) throw new TypeError('"upstreams" must name at least one upstream');

  assertObject('access', options.access);
  const access = options.access as Record<string, unknown>;
  const fallback = access['*'] !== undefined ? resolveRules('access["*"]', access['*']) : undefined;

  let perModel: Record<string, unknown> = {};
  const budgetsRaw: unknown = options.budgets ?? {};
  assertKnownKeys('budgets', budgetsRaw, [
    'store',
    'perPrincipal',
    'perModel',
    'onStoreError',
    'streamBlockTokens',
  ]);
  if (budgetsRaw.perModel !== undefined) {
    assertObject('budgets.perModel', budgetsRaw.perModel);
    perModel = budgetsRaw.perModel;
  }

  assertObject('models', options.models);
  const models = new Map<string, ResolvedRelayModel>();
  for (const [id, m] of Object.entries(options.models)) {
    const field = `models["${id}"]`;
    if (!MODEL_NAME.test(id))
      throw new TypeError(
        `"models" has an invalid model name ${describeValue(id)} (1-128 of [A-Za-z0-9._:-])`,
      );
    assertKnownKeys(field, m, ['upstream', 'model', 'endpoints', 'defaultMaxTokens', 'ownedBy']);
    assertString(`${field}.upstream`, m.upstream);
    if (upstreams[m.upstream] === undefined)
      throw new TypeError(`"${field}.upstream" names "${m.upstream}", which is not in "upstreams"`);
    const upstreamModel = m.model ?? id;
    assertString(`${field}.model`, upstreamModel);
    if (upstreamModel.length > 256) throw new TypeError(`"${field}.model" is longer than 256 characters`);
    const endpoints = m.endpoints ?? ENDPOINTS;
    if (!Array.isArray(endpoints) || endpoints.length === 0)
      throw new TypeError(`"${field}.endpoints" must be a non-empty array of ${ENDPOINTS.join(', ')}`);
    for (const e of endpoints) assertOneOf(`${field}.endpoints`, e, ENDPOINTS);
    const defaultMaxTokens = m.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
    assertInteger(`${field}.defaultMaxTokens`, defaultMaxTokens, 1, 10_000_000);
    const ownedBy = m.ownedBy ?? 'inference-shield';
    assertString(`${field}.ownedBy`, ownedBy);
    const rules = access[id] !== undefined ? resolveRules(`access["${id}"]`, access[id]) : fallback;
    if (rules === undefined)
      throw new TypeError(`model "${id}" has no access rules: add access["${id}"] or access["*"]`);
    const limits =
      perModel[id] !== undefined ? resolveLimits(`budgets.perModel["${id}"]`, perModel[id]) : undefined;
    models.set(
      id,
      Object.freeze({
        id,
        upstream: m.upstream,
        upstreamModel,
        endpoints: new Set(endpoints),
        defaultMaxTokens,
        ownedBy,
        rules,
        ...(limits !== undefined ? { limits } : {}),
        upstreamModelField: `"model":${JSON.stringify(upstreamModel)}`,
        publicModelField: `"model":${JSON.stringify(id)}`,
        listing: Object.freeze({ id, object: 'model' as const, created: CREATED, owned_by: ownedBy }),
      }),
    );
  }
  if (models.size === 0) throw new TypeError('"models" must hold at least one model');
  for (const key of Object.keys(access)) {
    if (key !== '*' && !models.has(key))
      throw new TypeError(`"access" names "${key}", which is not in "models"`);
  }
  for (const key of Object.keys(perModel)) {
    if (!models.has(key)) throw new TypeError(`"budgets.perModel" names "${key}", which is not in "models"`);
  }

  const perPrincipal =
    budgetsRaw.perPrincipal !== undefined
      ? resolveLimits('budgets.perPrincipal', budgetsRaw.perPrincipal)
      : undefined;
  const onStoreError = budgetsRaw.onStoreError ?? 'closed';
  assertOneOf('budgets.onStoreError', onStoreError, ['closed', 'open'] as const);
  const streamBlockTokens = budgetsRaw.streamBlockTokens ?? DEFAULT_STREAM_BLOCK;
  assertInteger('budgets.streamBlockTokens', streamBlockTokens, 1, 1_000_000);
  if (budgetsRaw.store !== undefined && !isBudgetStore(budgetsRaw.store))
    throw new TypeError(
      `"budgets.store" must be a BudgetStore (reserve, adjust, close), got ${describeValue(budgetsRaw.store)}`,
    );

  let usageSink: ResolvedLlmRelayOptions['usageSink'];
  if (options.usage !== undefined) {
    assertKnownKeys('usage', options.usage, ['sink']);
    const sink: unknown = options.usage.sink;
    if (sink !== undefined) {
      if (typeof (sink as { record?: unknown } | null)?.record !== 'function')
        throw new TypeError(`"usage.sink" must have a record(event) method, got ${describeValue(sink)}`);
      usageSink = sink as NonNullable<ResolvedLlmRelayOptions['usageSink']>;
    }
  }

  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  assertInteger('maxRequestBytes', maxRequestBytes, 1024, 64 * 1024 * 1024);
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  assertInteger('maxResponseBytes', maxResponseBytes, 1024, 512 * 1024 * 1024);

  return Object.freeze({
    upstreams: Object.freeze(upstreams),
    models,
    budgets: Object.freeze({
      ...(budgetsRaw.store !== undefined ? { store: budgetsRaw.store as BudgetStore } : {}),
      ...(perPrincipal !== undefined ? { perPrincipal } : {}),
      onStoreError,
      streamBlockTokens,
    }),
    ...(usageSink !== undefined ? { usageSink } : {}),
    maxRequestBytes,
    maxResponseBytes,
  });
}

/** True when any budget is configured (else the relay never calls a store). */
export function budgetsEnabled(options: ResolvedLlmRelayOptions): boolean {
  if (options.budgets.perPrincipal !== undefined) return true;
  for (const m of options.models.values()) if (m.limits !== undefined) return true;
  return false;
}
