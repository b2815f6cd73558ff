import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type { Span } from '@opentelemetry/api';
import { isShieldError, ShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
import { principalOf, type AuditSink, type ShieldPrincipal } from '@inference-shield/identity';
import {
  AUDIT_SINK,
  IDENTITY_OPTIONS,
  type ResolvedIdentityOptions,
} from '@inference-shield/identity/internal';
import {
  InjectUpstreamRegistry,
  type UpstreamClient,
  type UpstreamRegistry,
  type UpstreamResponse,
} from '@inference-shield/upstream';
import { BudgetGate, budgetHeaders, type Reservation } from './budget-gate.js';
import type { BudgetStore } from './budget/budget-store.interface.js';
import { MemoryBudgetStore } from './budget/memory-budget.store.js';
import { estimateTokens, maxOutputTokens } from './budget/token-estimate.js';
import type {
  RelayEndpoint,
  ResolvedLlmRelayOptions,
  ResolvedRelayModel,
} from './llm-relay-options.interface.js';
import { budgetsEnabled } from './llm-relay-options.resolver.js';
import {
  BYTES_PER_TOKEN,
  LLM_RELAY_OPTIONS,
  MAX_ERROR_BODY_BYTES,
  MAX_SSE_EVENT_BYTES,
  RELAY_ROUTES,
  UPSTREAM_PATHS,
} from './llm-relay.constants.js';
import { mayUse } from './model-access.js';
import { relayError, RelayHttpError, toRelayHttpError } from './openai-error.js';
import { checkRelayRequest, type RelayRequest } from './relay-request.js';
import { LlmUsageRecord, type LlmUsageOutcome } from './usage-event.js';
import { addFinishReason, RelayTelemetry, type RelayCallFacts } from './relay.telemetry.js';

/** A safe token of an upstream error (`code`, `type`, `param`): anything else is dropped. */
const ERROR_TOKEN = /^[A-Za-z0-9_.:[\]-]{1,64}$/;
/** `Retry-After`: delay-seconds or an IMF-fixdate (RFC 9110 §10.2.3). */
const RETRY_AFTER = /^(?:\d{1,7}|[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT)$/;
/** Upstream statuses about our own credential or account: never the caller's to see. */
/** A library error code, logged as is (`ECONNRESET`, `ERR_SSL_…`): nothing that can quote input. */
const LIBRARY_CODE = /^[A-Z0-9_]{1,80}$/;
const OUR_CREDENTIAL_STATUSES: ReadonlySet<number> = new Set([401, 403, 407]);
const SSE_HEADERS = Object.freeze({
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
});

/** One upstream as the relay calls it. */
interface RelayUpstream {
  readonly client: UpstreamClient;
  readonly assertCaller: boolean;
}

/** Usage facts of one call, filled as it goes. */
class CallState {
  promptTokens: number | undefined = undefined;
  completionTokens: number | undefined = undefined;
  estimated = false;
  ttftMs: number | undefined = undefined;
  status = 200;
  outcome: LlmUsageOutcome = 'ok';
  code: ShieldErrorCode | undefined = undefined;
  /** UTF-8 bytes of streamed output text, for the running estimate. */
  outputBytes = 0;
  stream = false;
  /** The call's GenAI client span (undefined without a tracer provider). */
  span: Span | undefined = undefined;
  /** Finish reasons of the answer, one per choice, from a fixed list (relay.telemetry.ts). */
  readonly finishReasons: string[] = [];
  constructor(
    readonly started: number,
    readonly route: string,
  ) {}
}

/** What a stream handler needs to know of its call. */
interface StreamContext {
  readonly state: CallState;
  readonly model: ResolvedRelayModel;
  readonly request: RelayRequest;
  readonly reservation: Reservation | undefined;
  /** Estimated prompt tokens (the part of the reservation that is not output). */
  readonly promptEstimate: number;
  readonly abort: AbortController;
}

/**
 * The relay: checks a caller's request against the catalogue, access rules and budgets, calls the
 * upstream with our credential (never the caller's), and streams the answer back in OpenAI's shape,
 * counting tokens as they go and ending a stream that runs past its budget.
 */
@Injectable()
export class LlmRelayService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('LlmRelay');
  private readonly upstreams = new Map<string, RelayUpstream>();
  private readonly roleClaimPath: readonly string[];
  private readonly sink: AuditSink | undefined;
  private gate: BudgetGate | undefined;
  // OpenTelemetry (API only): a no-op unless the application registered an SDK before start-up.
  private readonly telemetry = new RelayTelemetry();
  private ownStore: BudgetStore | undefined;

  constructor(
    @Inject(LLM_RELAY_OPTIONS) private readonly options: ResolvedLlmRelayOptions,
    @InjectUpstreamRegistry() private readonly registry: UpstreamRegistry,
    @Optional() @Inject(AUDIT_SINK) auditSink?: AuditSink,
    @Optional() @Inject(IDENTITY_OPTIONS) identity?: ResolvedIdentityOptions,
  ) {
    this.roleClaimPath = identity?.roleClaimPath ?? ['roles'];
    this.sink = options.usageSink ?? auditSink;
  }

  /** Every relayed upstream must be configured in `UpstreamModule`: checked before the app listens. */
  onModuleInit(): void {
    for (const [name, u] of Object.entries(this.options.upstreams)) {
      if (!this.registry.names().includes(name)) {
        throw new TypeError(
          `LlmRelayModule: upstream "${name}" is not configured in UpstreamModule (configured: ${this.registry.names().join(', ') || 'none'})`,
        );
      }
      this.upstreams.set(name, { client: this.registry.client(name), assertCaller: u.assertCaller });
    }
    if (budgetsEnabled(this.options)) {
      let store = this.options.budgets.store;
      if (store === undefined) {
        store = new MemoryBudgetStore();
        this.ownStore = store;
      }
      this.gate = new BudgetGate(store, this.options);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.ownStore?.close();
  }

  /** `GET /v1/models`: the models this caller may use, and only those. */
  list(req: object): { object: 'list'; data: ResolvedRelayModel['listing'][] } {
    const principal = this.principal(req);
    const data: ResolvedRelayModel['listing'][] = [];
    for (const m of this.options.models.values())
      if (mayUse(m, principal, this.roleClaimPath)) data.push(m.listing);
    return { object: 'list', data };
  }

  /** `GET /v1/models/{id}`: a model this caller may use, else 404 as if it did not exist. */
  get(req: object, id: string): ResolvedRelayModel['listing'] {
    const principal = this.principal(req);
    const m = this.options.models.get(id);
    if (m === undefined || !mayUse(m, principal, this.roleClaimPath))
      throw relayError('ERR_LLM_MODEL_NOT_FOUND', { param: 'model', message: notFoundMessage(id) });
    return m.listing;
  }

  /**
   * `POST /v1/chat/completions`, `/v1/responses`, `/v1/embeddings`. Refusals before the answer
   * starts are thrown as {@link RelayHttpError} (the controller's filter writes them); once a stream
   * has started, it is ended here, cleanly.
   */
  async relay(endpoint: RelayEndpoint, req: object, res: ServerResponse, body: unknown): Promise<void> {
    const state = new CallState(performance.now(), RELAY_ROUTES[endpoint]);
    state.span = this.telemetry.startCall(state.route);
    let principal: ShieldPrincipal | undefined;
    let model: ResolvedRelayModel | undefined;
    try {
      principal = this.principal(req);
      const request = checkRelayRequest(endpoint, body);
      const stream = request.stream;
      state.stream = stream;
      model = this.modelFor(request.model, endpoint, principal);
      const b = body as Record<string, unknown>;
      const defaultOut = endpoint === 'embeddings' ? 0 : model.defaultMaxTokens;
      const estimate = estimateTokens(b, defaultOut);
      const out: Record<string, unknown> = { ...b, model: model.upstreamModel };
      // Usage comes in a last chunk only when asked: we always ask, and strip it if the caller did not.
      if (stream && endpoint === 'chat') {
        const given = b['stream_options'];
        out['stream_options'] = {
          ...(typeof given === 'object' && given !== null ? given : {}),
          include_usage: true,
        };
      }
      const json = JSON.stringify(out);
      if (
        json.length > this.options.maxRequestBytes &&
        Buffer.byteLength(json) > this.options.maxRequestBytes
      )
        throw relayError('ERR_BODY_TOO_LARGE');
      const reservation = this.gate ? await this.gate.reserve(principal, model, estimate) : undefined;
      const promptEstimate = estimate - maxOutputTokens(b, defaultOut);
      const ctx: StreamContext = {
        state,
        model,
        request,
        reservation,
        promptEstimate,
        abort: new AbortController(),
      };
      // The upstream call's span is a child of this call's span.
      await RelayTelemetry.within(state.span, () => this.call(endpoint, req, res, json, ctx));
    } catch (err) {
      if (err instanceof ModelForbidden) model = err.model;
      const refusal = err instanceof ModelForbidden ? err.answer : toRelayHttpError(err);
      if (state.outcome === 'ok') state.outcome = refusal.status >= 500 ? 'failed' : 'refused';
      if (state.outcome === 'failed') this.logFailure(refusal, err, model);
      state.status = refusal.status;
      // The audit trail keeps the real reason (a forbidden model), the caller sees "not found".
      state.code = isShieldError(err) ? err.code : refusal.code;
      throw refusal;
    } finally {
      this.record(state, principal, model);
    }
  }

  private principal(req: object): ShieldPrincipal {
    const p = principalOf(req);
    // The relay's routes are never anonymous: without IdentityModule's guard, nobody passes.
    if (p === undefined) throw new ShieldError('ERR_TOKEN_MISSING');
    return p;
  }

  private modelFor(name: string, endpoint: RelayEndpoint, principal: ShieldPrincipal): ResolvedRelayModel {
    const m = this.options.models.get(name);
    if (m === undefined || !m.endpoints.has(endpoint))
      throw relayError('ERR_LLM_MODEL_NOT_FOUND', { param: 'model', message: notFoundMessage(name) });
    if (!mayUse(m, principal, this.roleClaimPath)) {
      // Answered exactly as an unknown model (names do not leak); recorded as what it is.
      throw new ModelForbidden(m);
    }
    return m;
  }

  private async call(
    endpoint: RelayEndpoint,
    req: object,
    res: ServerResponse,
    json: string,
    ctx: StreamContext,
  ): Promise<void> {
    const { model, reservation, abort, state } = ctx;
    const upstream = this.upstreams.get(model.upstream);
    if (upstream === undefined) throw new ShieldError('ERR_INTERNAL');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: ctx.request.stream ? 'text/event-stream' : 'application/json',
      // The relay reads the answer: it must come unencoded.
      'accept-encoding': 'identity',
    };
    if (upstream.assertCaller) {
      const a = await this.registry.callerAssertionFor(req, model.upstream);
      if (a !== undefined) headers[a.header] = a.value;
    }
    const onClose = (): void => {
      // The caller hung up before the answer was complete: stop the upstream's work now.
      if (!res.writableFinished) {
        if (state.outcome === 'ok') state.outcome = 'cancelled';
        abort.abort();
      }
    };
    res.once('close', onClose);
    let answer: UpstreamResponse | undefined;
    try {
      answer = await upstream.client.request({
        path: UPSTREAM_PATHS[endpoint],
        method: 'POST',
        headers,
        body: json,
        signal: abort.signal,
      });
      if (answer.statusCode < 200 || answer.statusCode >= 300) {
        await reservation?.settle(0);
        throw await this.upstreamRefusal(answer, model);
      }
      const isStream =
        ctx.request.stream && String(answer.headers['content-type'] ?? '').startsWith('text/event-stream');
      if (isStream) await this.pipeStream(endpoint, answer, res, ctx);
      else await this.sendJson(endpoint, answer, res, ctx);
    } catch (err) {
      answer?.body.destroy();
      if (!res.headersSent) {
        if (abort.signal.aborted && state.outcome === 'cancelled') {
          await reservation?.settle(0);
          throw new ShieldError('ERR_UPSTREAM_ABORTED', { cause: err });
        }
        await reservation?.settle(0);
        throw err;
      }
      // Mid-stream: the status is gone. End the stream with an error event carrying only our code.
      this.endStreamWithError(endpoint, res, err, ctx);
    } finally {
      res.off('close', onClose);
    }
  }

  /** An upstream non-2xx: a 4xx of the caller's own passes on (status, code); the rest is a 502. */
  private async upstreamRefusal(
    answer: UpstreamResponse,
    model: ResolvedRelayModel,
  ): Promise<RelayHttpError> {
    const status = answer.statusCode;
    const text = await readBounded(answer, MAX_ERROR_BODY_BYTES).catch(() => '');
    if (status >= 400 && status < 500 && !OUR_CREDENTIAL_STATUSES.has(status)) {
      const e = upstreamErrorFields(text);
      const headers: Record<string, string> = {};
      const retry = answer.headers['retry-after'];
      if (status === 429 && typeof retry === 'string' && RETRY_AFTER.test(retry))
        headers['retry-after'] = retry;
      return new RelayHttpError(
        status,
        {
          error: {
            // Our words: the upstream's message may name its own model or account.
            message:
              status === 404 && e.code === 'model_not_found'
                ? notFoundMessage(model.id)
                : `The upstream model server refused the request (${status}).`,
            type: e.type ?? (status === 429 ? 'rate_limit_error' : 'invalid_request_error'),
            param: e.param,
            code: e.code ?? 'ERR_LLM_UPSTREAM_REFUSED',
          },
        },
        headers,
        'ERR_LLM_UPSTREAM_REFUSED',
      );
    }
    const err = this.upstreams
      .get(model.upstream)
      ?.client.recordError(
        new ShieldError('ERR_UPSTREAM_BAD_RESPONSE', { detail: `upstream status ${status}` }),
      );
    return toRelayHttpError(err ?? new ShieldError('ERR_UPSTREAM_BAD_RESPONSE'));
  }

  /** A non-streamed answer: read (bounded), count its usage, rename the model, send. */
  private async sendJson(
    endpoint: RelayEndpoint,
    answer: UpstreamResponse,
    res: ServerResponse,
    ctx: StreamContext,
  ): Promise<void> {
    const { state, model, reservation } = ctx;
    const declared = Number(answer.headers['content-length'] ?? 0);
    if (declared > this.options.maxResponseBytes) throw new ShieldError('ERR_UPSTREAM_BAD_RESPONSE');
    const text = await readBounded(answer, this.options.maxResponseBytes);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ShieldError('ERR_UPSTREAM_BAD_RESPONSE', { cause: err, detail: 'upstream body is not JSON' });
    }
    const usage = usageOf(endpoint, (parsed as { usage?: unknown } | null)?.usage);
    this.count(state, usage, ctx);
    finishReasonsOf(endpoint, parsed, state.finishReasons);
    const out = text.replace(model.upstreamModelField, model.publicModelField);
    state.ttftMs = performance.now() - state.started;
    res.writeHead(200, {
      ...budgetHeaders(reservation),
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(out),
    });
    res.end(out);
    // Settled after the answer is out: the store's round trip is not on the caller's latency.
    await reservation?.settle((state.promptTokens ?? 0) + (state.completionTokens ?? 0));
  }

  /**
   * A streamed answer, event by event: the model renamed, output counted as it goes (estimate from
   * the text, about 4 bytes a token), more budget asked when it outgrows the reservation, the usage
   * chunk kept for the count and stripped unless the caller asked for it. Over budget: a final
   * chunk (`finish_reason: "length"`) and `[DONE]` for chat, a `response.incomplete` event for the
   * Responses API, then the upstream request is cancelled.
   */
  private async pipeStream(
    endpoint: RelayEndpoint,
    answer: UpstreamResponse,
    res: ServerResponse,
    ctx: StreamContext,
  ): Promise<void> {
    const { state, reservation } = ctx;
    res.writeHead(200, { ...budgetHeaders(reservation), ...SSE_HEADERS });
    res.flushHeaders();
    state.ttftMs = performance.now() - state.started;
    const reader = endpoint === 'chat' ? new ChatStreamReader(ctx) : new ResponsesStreamReader(ctx);
    const decoder = new StringDecoder('utf8');
    let pending = '';
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      pending += decoder.write(chunk);
      for (;;) {
        const end = eventEnd(pending);
        if (end === undefined) break;
        const raw = pending.slice(0, end.at);
        pending = pending.slice(end.at + end.length);
        const text = reader.event(raw);
        if (reservation !== undefined && !(await this.withinBudget(ctx))) {
          // Over budget: this event's output does not go out; end the caller's stream cleanly, then
          // cancel the upstream's generation. (What it generated is still counted in the event.)
          state.outcome = 'cut';
          state.code = 'ERR_LLM_TOKENS_EXCEEDED';
          this.count(state, undefined, ctx);
          res.end(reader.cut());
          ctx.abort.abort();
          answer.body.destroy();
          await reservation.settle(runningTotal(ctx));
          return;
        }
        if (text !== undefined && !(await write(res, text))) {
          // The caller is gone (its close already cancelled the upstream): count what was made.
          ctx.abort.abort();
          answer.body.destroy();
          if (state.outcome === 'ok') state.outcome = 'cancelled';
          this.count(state, undefined, ctx);
          await reservation?.settle(runningTotal(ctx));
          return;
        }
      }
      if (pending.length > MAX_SSE_EVENT_BYTES) throw new ShieldError('ERR_UPSTREAM_BAD_RESPONSE');
    }
    const usage = reader.usage;
    if (usage !== undefined) this.count(state, usage, ctx);
    else this.count(state, undefined, ctx);
    res.end();
    await reservation?.settle((state.promptTokens ?? 0) + (state.completionTokens ?? 0));
  }

  /** True while the running estimate fits what is held, asking the store for more when it does not. */
  private async withinBudget(ctx: StreamContext): Promise<boolean> {
    const reservation = ctx.reservation;
    const gate = this.gate;
    if (reservation === undefined || gate === undefined) return true;
    const used = runningTotal(ctx);
    if (used <= reservation.held) return true;
    const need = used - reservation.held;
    const block = this.options.budgets.streamBlockTokens;
    if (block > need && (await reservation.grow(block))) return true;
    // A whole block did not fit: the budget's last tokens still may.
    return reservation.grow(need);
  }

  /** Upstream usage when given, else the relay's estimate (flagged as such). */
  private count(state: CallState, usage: Usage | undefined, ctx: StreamContext): void {
    if (usage !== undefined) {
      state.promptTokens = usage.prompt;
      state.completionTokens = usage.completion;
      return;
    }
    state.estimated = true;
    state.promptTokens = ctx.promptEstimate;
    state.completionTokens = Math.ceil(state.outputBytes / BYTES_PER_TOKEN);
  }

  private endStreamWithError(
    endpoint: RelayEndpoint,
    res: ServerResponse,
    err: unknown,
    ctx: StreamContext,
  ): void {
    const { state } = ctx;
    if (ctx.abort.signal.aborted || res.destroyed) {
      if (state.outcome === 'ok') state.outcome = 'cancelled';
      this.count(state, undefined, ctx);
      void ctx.reservation?.settle(runningTotal(ctx));
      return;
    }
    const refusal = toRelayHttpError(
      isShieldError(err) ? err : new ShieldError('ERR_UPSTREAM_BAD_RESPONSE', { cause: err }),
    );
    state.outcome = 'failed';
    state.code = refusal.code;
    this.logFailure(refusal, err, ctx.model);
    this.count(state, undefined, ctx);
    void ctx.reservation?.settle(runningTotal(ctx));
    const e = refusal.body.error;
    res.end(
      endpoint === 'chat'
        ? `data: ${JSON.stringify({ error: e })}\n\n`
        : `event: error\ndata: ${JSON.stringify({ type: 'error', code: e.code, message: e.message, param: null })}\n\n`,
    );
  }

  /**
   * An upstream failure the caller gets as a 5xx is an operator's problem: one line with the code,
   * the upstream, the class (and library code, e.g. a TLS alert) of its cause. Never a message, a
   * prompt or an output.
   */
  private logFailure(refusal: RelayHttpError, err: unknown, model: ResolvedRelayModel | undefined): void {
    if (refusal.status < 500) return;
    // Our own errors carry a safe `detail` for operators (an upstream status, the TLS alert that
    // refused our client certificate); it never goes into the body.
    const shield = isShieldError(err) ? err : isShieldError(refusal.cause) ? refusal.cause : undefined;
    const detail = shield?.details.detail;
    this.logger.warn(
      `upstream "${model?.upstream ?? '?'}" failed: ${refusal.code}${detail !== undefined ? `, ${detail}` : ''} (${causeOf(err)})`,
    );
  }

  private record(
    state: CallState,
    principal: ShieldPrincipal | undefined,
    model: ResolvedRelayModel | undefined,
  ): void {
    const facts: RelayCallFacts = {
      route: state.route,
      model: model?.id,
      upstreamModel: model?.upstreamModel,
      promptTokens: state.promptTokens,
      completionTokens: state.completionTokens,
      ttftMs: state.ttftMs,
      durationMs: performance.now() - state.started,
      outcome: state.outcome,
      code: state.code,
    };
    this.telemetry.called(facts);
    if (state.span !== undefined) {
      const client = model !== undefined ? this.upstreams.get(model.upstream)?.client : undefined;
      this.telemetry.endCall(state.span, {
        ...facts,
        upstream: client !== undefined ? { name: client.name, origin: client.origin } : undefined,
        finishReasons: state.finishReasons,
        estimated: state.estimated,
      });
    }
    if (this.sink === undefined) return;
    try {
      this.sink.record(
        new LlmUsageRecord(
          new Date().toISOString(),
          state.outcome === 'refused' ? 'deny' : 'allow',
          state.route,
          principal,
          state.code,
          model?.id,
          model?.upstream,
          state.promptTokens,
          state.completionTokens,
          state.estimated || undefined,
          state.ttftMs === undefined ? undefined : Math.round(state.ttftMs),
          Math.round(performance.now() - state.started),
          state.status,
          state.outcome,
          state.stream,
        ),
      );
    } catch (err) {
      this.logger.error(`usage sink failed: ${err instanceof Error ? err.name : typeof err}`);
    }
  }
}

/** A forbidden model: answered 404 `ERR_LLM_MODEL_NOT_FOUND`, recorded `ERR_LLM_MODEL_FORBIDDEN`. */
class ModelForbidden extends ShieldError {
  /** Exactly what an unknown model of this name gets. */
  readonly answer: RelayHttpError;
  constructor(readonly model: ResolvedRelayModel) {
    super('ERR_LLM_MODEL_FORBIDDEN');
    this.answer = relayError('ERR_LLM_MODEL_NOT_FOUND', {
      param: 'model',
      message: notFoundMessage(model.id),
    });
  }
}

function notFoundMessage(name: string): string {
  const shown = name.length > 128 ? `${name.slice(0, 128)}…` : name;
  return `The model \`${JSON.stringify(shown).slice(1, -1)}\` does not exist or you do not have access to it.`;
}

interface Usage {
  readonly prompt: number;
  readonly completion: number;
}

function nonNegative(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined;
}

/** The upstream's `usage` (chat and embeddings: `prompt_tokens`; Responses: `input_tokens`). */
function usageOf(endpoint: RelayEndpoint, raw: unknown): Usage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const u = raw as Record<string, unknown>;
  const prompt = nonNegative(endpoint === 'responses' ? u['input_tokens'] : u['prompt_tokens']);
  if (prompt === undefined) return undefined;
  const completion =
    nonNegative(endpoint === 'responses' ? u['output_tokens'] : u['completion_tokens']) ??
    Math.max(0, (nonNegative(u['total_tokens']) ?? prompt) - prompt);
  return { prompt, completion };
}

/**
 * The finish reasons of a whole answer: each chat choice's `finish_reason`; a Responses answer's
 * `incomplete_details.reason` when incomplete, else its `status`. Embeddings have none.
 */
function finishReasonsOf(endpoint: RelayEndpoint, parsed: unknown, into: string[]): void {
  if (typeof parsed !== 'object' || parsed === null) return;
  const body = parsed as Record<string, unknown>;
  if (endpoint === 'chat' && Array.isArray(body['choices'])) {
    for (const c of body['choices'] as unknown[]) {
      if (typeof c === 'object' && c !== null)
        addFinishReason(into, (c as Record<string, unknown>)['finish_reason']);
    }
  } else if (endpoint === 'responses') {
    const details = body['incomplete_details'];
    const reason =
      body['status'] === 'incomplete' && typeof details === 'object' && details !== null
        ? (details as Record<string, unknown>)['reason']
        : body['status'];
    addFinishReason(into, reason);
  }
}

function runningTotal(ctx: StreamContext): number {
  return ctx.promptEstimate + Math.ceil(ctx.state.outputBytes / BYTES_PER_TOKEN);
}

/** Where the first complete server-sent event of `text` ends (a blank line, LF or CRLF). */
function eventEnd(text: string): { at: number; length: number } | undefined {
  const lf = text.indexOf('\n\n');
  const crlf = text.indexOf('\r\n\r\n');
  if (lf < 0 && crlf < 0) return undefined;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { at: crlf, length: 4 };
  return { at: lf, length: 2 };
}

/** The `data` of one event (its `data:` lines joined) and its `event` name. */
function parseEvent(raw: string): { name: string | undefined; data: string | undefined } {
  let name: string | undefined;
  let data: string | undefined;
  for (const line of raw.split('\n')) {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (l.startsWith('data:')) {
      const v = l.charCodeAt(5) === 32 ? l.slice(6) : l.slice(5);
      data = data === undefined ? v : `${data}\n${v}`;
    } else if (l.startsWith('event:')) {
      name = (l.charCodeAt(6) === 32 ? l.slice(7) : l.slice(6)).trim();
    }
  }
  return { name, data };
}

/** Reads one stream's events, keeps what the budget needs, and says what goes to the caller. */
interface StreamReader {
  usage: Usage | undefined;
  /** The caller's stream already ended (`[DONE]` sent). */
  done: boolean;
  /** The text to write for one upstream event (undefined: drop it). */
  event(raw: string): string | undefined;
  /** The clean end written when the budget runs out. */
  cut(): string;
}

class ChatStreamReader implements StreamReader {
  usage: Usage | undefined = undefined;
  done = false;
  private id = 'chatcmpl-relay';
  private created = Math.floor(Date.now() / 1000);
  /** Choices seen, and those already finished. */
  private readonly open = new Set<number>();

  constructor(private readonly ctx: StreamContext) {}

  event(raw: string): string | undefined {
    const { data } = parseEvent(raw);
    if (data === undefined) return `${raw}\n\n`;
    if (data === '[DONE]') {
      this.done = true;
      return 'data: [DONE]\n\n';
    }
    let chunk: Record<string, unknown>;
    try {
      chunk = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    if (typeof chunk['error'] === 'object' && chunk['error'] !== null) {
      // An error event of the upstream: its message may describe its internals.
      markFailed(this.ctx);
      const e = errorFieldsOf(chunk['error']);
      return `data: ${JSON.stringify({ error: { message: MID_STREAM_MESSAGE, type: e.type ?? 'server_error', param: e.param, code: e.code ?? 'ERR_UPSTREAM_BAD_RESPONSE' } })}\n\n`;
    }
    if (typeof chunk['id'] === 'string') this.id = chunk['id'];
    if (typeof chunk['created'] === 'number') this.created = chunk['created'];
    const usage = usageOf('chat', chunk['usage']);
    if (usage !== undefined) this.usage = usage;
    const choices = chunk['choices'];
    if (Array.isArray(choices)) {
      for (const c of choices as Record<string, unknown>[]) this.choice(c);
    }
    if (!this.ctx.request.wantsUsage && 'usage' in chunk) {
      // The usage chunk (no choices) was asked by us, not the caller: it goes no further.
      if (Array.isArray(choices) && choices.length === 0) return undefined;
      delete chunk['usage'];
      chunk['model'] = this.ctx.model.id;
      return `data: ${JSON.stringify(chunk)}\n\n`;
    }
    return `data: ${data.replace(this.ctx.model.upstreamModelField, this.ctx.model.publicModelField)}\n\n`;
  }

  private choice(c: Record<string, unknown>): void {
    const index = typeof c['index'] === 'number' ? c['index'] : 0;
    if (c['finish_reason'] !== null && c['finish_reason'] !== undefined) {
      this.open.delete(index);
      addFinishReason(this.ctx.state.finishReasons, c['finish_reason']);
    } else this.open.add(index);
    const delta = c['delta'];
    if (typeof delta !== 'object' || delta === null) return;
    const d = delta as Record<string, unknown>;
    let bytes = 0;
    for (const key of ['content', 'refusal', 'reasoning_content'] as const) {
      const v = d[key];
      if (typeof v === 'string') bytes += Buffer.byteLength(v);
    }
    const calls = d['tool_calls'];
    if (Array.isArray(calls)) {
      for (const call of calls as { function?: { arguments?: unknown; name?: unknown } }[]) {
        const args = call?.function?.arguments;
        const name = call?.function?.name;
        if (typeof args === 'string') bytes += Buffer.byteLength(args);
        if (typeof name === 'string') bytes += Buffer.byteLength(name);
      }
    }
    this.ctx.state.outputBytes += bytes;
  }

  cut(): string {
    let out = '';
    const indexes = this.open.size > 0 ? [...this.open] : [0];
    for (const index of indexes) {
      addFinishReason(this.ctx.state.finishReasons, 'length');
      out += `data: ${JSON.stringify({
        id: this.id,
        object: 'chat.completion.chunk',
        created: this.created,
        model: this.ctx.model.id,
        choices: [{ index, delta: {}, logprobs: null, finish_reason: 'length' }],
      })}\n\n`;
    }
    if (this.ctx.request.wantsUsage) {
      const prompt = this.ctx.promptEstimate;
      const completion = Math.ceil(this.ctx.state.outputBytes / BYTES_PER_TOKEN);
      out += `data: ${JSON.stringify({
        id: this.id,
        object: 'chat.completion.chunk',
        created: this.created,
        model: this.ctx.model.id,
        choices: [],
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      })}\n\n`;
    }
    return `${out}data: [DONE]\n\n`;
  }
}

class ResponsesStreamReader implements StreamReader {
  usage: Usage | undefined = undefined;
  done = false;
  private response: Record<string, unknown> | undefined;
  private sequence = 0;

  constructor(private readonly ctx: StreamContext) {}

  event(raw: string): string | undefined {
    const { data } = parseEvent(raw);
    if (data === undefined || data === '[DONE]') return `${raw}\n\n`;
    let ev: Record<string, unknown>;
    try {
      ev = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    if (typeof ev['sequence_number'] === 'number') this.sequence = ev['sequence_number'];
    const type = ev['type'];
    if (type === 'error') {
      markFailed(this.ctx);
      const e = errorFieldsOf(ev);
      return `event: error\ndata: ${JSON.stringify({ type: 'error', code: e.code ?? 'ERR_UPSTREAM_BAD_RESPONSE', message: MID_STREAM_MESSAGE, param: e.param, sequence_number: this.sequence })}\n\n`;
    }
    if (type === 'response.failed') {
      markFailed(this.ctx);
      const r = ev['response'];
      if (typeof r === 'object' && r !== null) {
        const failed = r as Record<string, unknown>;
        const e = errorFieldsOf(failed['error']);
        failed['error'] = { code: e.code ?? 'server_error', message: MID_STREAM_MESSAGE };
        failed['model'] = this.ctx.model.id;
        return `event: response.failed\ndata: ${JSON.stringify(ev)}\n\n`;
      }
    }
    if (
      type === 'response.output_text.delta' ||
      type === 'response.refusal.delta' ||
      type === 'response.function_call_arguments.delta'
    ) {
      const d = ev['delta'];
      if (typeof d === 'string') this.ctx.state.outputBytes += Buffer.byteLength(d);
    }
    const response = ev['response'];
    if (typeof response === 'object' && response !== null) {
      this.response = response as Record<string, unknown>;
      const usage = usageOf('responses', this.response['usage']);
      if (usage !== undefined) this.usage = usage;
      if (type === 'response.completed' || type === 'response.incomplete') {
        finishReasonsOf('responses', this.response, this.ctx.state.finishReasons);
      }
    }
    const { upstreamModelField, publicModelField } = this.ctx.model;
    return `${raw.replaceAll(upstreamModelField, publicModelField)}\n\n`;
  }

  cut(): string {
    const prompt = this.ctx.promptEstimate;
    const completion = Math.ceil(this.ctx.state.outputBytes / BYTES_PER_TOKEN);
    addFinishReason(this.ctx.state.finishReasons, 'max_output_tokens');
    const response = {
      ...(this.response ?? { object: 'response', output: [] }),
      model: this.ctx.model.id,
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      usage: { input_tokens: prompt, output_tokens: completion, total_tokens: prompt + completion },
    };
    return `event: response.incomplete\ndata: ${JSON.stringify({
      type: 'response.incomplete',
      sequence_number: this.sequence + 1,
      response,
    })}\n\n`;
  }
}

/** Write with backpressure; false when the caller is gone. */
async function write(res: ServerResponse, text: string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return false;
  if (res.write(text)) return true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
  return !res.destroyed;
}

/** The body as text, at most `max` bytes (more is an upstream fault: 502). */
async function readBounded(answer: UpstreamResponse, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of answer.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      answer.body.destroy();
      throw new ShieldError('ERR_UPSTREAM_BAD_RESPONSE', { detail: 'upstream body too large' });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** `code`, `type`, `param` of an OpenAI error body, each only if it is a plain token. */
function upstreamErrorFields(text: string): { code?: string; type?: string; param: string | null } {
  let e: unknown;
  try {
    e = (JSON.parse(text) as { error?: unknown } | null)?.error;
  } catch {
    return { param: null };
  }
  return errorFieldsOf(e);
}

/** The plain-token fields of an OpenAI error object; its message is never kept. */
function errorFieldsOf(e: unknown): { code?: string; type?: string; param: string | null } {
  if (typeof e !== 'object' || e === null) return { param: null };
  const r = e as Record<string, unknown>;
  const token = (v: unknown): string | undefined =>
    typeof v === 'string' && ERROR_TOKEN.test(v) ? v : undefined;
  const out: { code?: string; type?: string; param: string | null } = { param: token(r['param']) ?? null };
  const code = token(r['code']);
  const type = token(r['type']);
  if (code !== undefined) out.code = code;
  if (type !== undefined) out.type = type;
  return out;
}

/** What the caller is told of an error the upstream sent inside a stream: its tokens, our words. */
const MID_STREAM_MESSAGE = 'The upstream model server failed while streaming.';

function markFailed(ctx: StreamContext): void {
  ctx.state.outcome = 'failed';
  ctx.state.code = 'ERR_UPSTREAM_BAD_RESPONSE';
}

/**
 * What is logged of a failure's cause: class names down the cause chain and library codes (a TLS
 * alert such as `ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED`), never a message.
 */
function causeOf(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      parts.push(
        typeof code === 'string' && LIBRARY_CODE.test(code) ? `${current.name} ${code}` : current.name,
      );
      current = (current as { cause?: unknown }).cause;
    } else {
      parts.push(typeof current);
      break;
    }
  }
  return parts.join(' < ') || 'no cause';
}
