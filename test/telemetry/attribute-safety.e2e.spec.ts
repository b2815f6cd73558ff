/**
 * OpenTelemetry, end to end, with a real SDK registered (in-memory metric reader and span
 * exporter, the W3C propagator, the async-hooks context manager) before the app is created, as an
 * application would: the relay fixture app (identity with an inline OIDC issuer and mTLS
 * workloads, an upstream over mTLS to the stand-in hosted LLM, the relay) is sent honest calls and
 * attacks (forged, foreign-key, oversized, garbage tokens, a forbidden model, a prompt), through the
 * real `openai` SDK and raw requests. Then every attribute of every metric point and span is
 * scanned: no token, no prompt, no output, no claim value other than subject, issuer and scopes.
 * A control plants a token in a span attribute and shows the scan catches it. Also checked: the
 * instruments exist, and the upstream received a `traceparent` of the `shield.upstream` span.
 */
import 'reflect-metadata';
import { context, metrics, propagation, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '@inference-shield/dev-pki';
import { AUDIENCE, ISSUER, issuerKey, type IssuerKey } from '../attacks/identity/attack-kit.js';
import { call, CaptureLogger, type TestApp } from '../support/harness.js';
import {
  CaptureSink,
  relayAppModule,
  sdk,
  startRelayApp,
  startStandin,
  workload,
  type StandinSetup,
} from '../llm-relay/support/relay-fixture.js';

/** A metric reader the test collects from on demand. */
class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

const reader = new TestReader();
const spans = new InMemorySpanExporter();
// Registered before any app exists: the API's meters have no proxy (see docs/telemetry.md).
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const PROMPT = 'PROMPT-SENTINEL-9d3f is the channel encrypted?';
const SECRET_CLAIM = 'CLAIM-SENTINEL-email-41c7@example.test';
const GARBAGE = 'GARBAGE-SENTINEL-not.a.jwt';

let hosted: StandinSetup;
let app: TestApp;
let key: IssuerKey;
let alice: IssuedCertificate;
const audit = new CaptureSink();
const logger = new CaptureLogger();
const clients: (OpenAI & { close(): Promise<void> })[] = [];
/** Every credential and text a call used: none may appear in telemetry. */
const secrets: string[] = [PROMPT, SECRET_CLAIM, GARBAGE];
const outputs: string[] = [];

function client(who: Parameters<typeof sdk>[1]): OpenAI {
  const c = sdk(app, who);
  clients.push(c);
  return c;
}

/** Every string of every attribute (keys and values), span names and status messages included. */
interface Collected {
  readonly strings: string[];
  readonly metricNames: Set<string>;
  readonly spans: ReadableSpan[];
}

function stringsOf(attributes: Attributes | undefined, into: string[]): void {
  for (const [k, v] of Object.entries(attributes ?? {})) {
    into.push(k);
    if (Array.isArray(v)) for (const x of v) into.push(String(x));
    else if (v !== undefined && v !== null) into.push(String(v));
  }
}

function collectFrom(resourceMetrics: ResourceMetrics, finished: ReadableSpan[]): Collected {
  const strings: string[] = [];
  const metricNames = new Set<string>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      metricNames.add(metric.descriptor.name);
      for (const point of metric.dataPoints as { attributes: Attributes }[])
        stringsOf(point.attributes, strings);
    }
  }
  for (const span of finished) {
    strings.push(span.name);
    if (span.status.message !== undefined) strings.push(span.status.message);
    stringsOf(span.attributes, strings);
    for (const event of span.events) {
      strings.push(event.name);
      stringsOf(event.attributes, strings);
    }
  }
  return { strings, metricNames, spans: finished };
}

/** The secrets found in the collected strings (a token's signature or payload part counts too). */
function leaks(collected: Collected, needles: readonly string[]): string[] {
  const parts = needles.flatMap((n) => [n, ...n.split('.').filter((p) => p.length >= 16)]);
  return parts.filter((needle) => collected.strings.some((s) => s.includes(needle)));
}

async function collect(): Promise<Collected> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return collectFrom(resourceMetrics, spans.getFinishedSpans());
}

beforeAll(async () => {
  hosted = await startStandin();
  key = await issuerKey('k1');
  const module = relayAppModule({
    upstream: { upstreams: { llm: hosted.upstream() } },
    relay: {
      upstreams: { llm: {} },
      models: {
        'chat-fast': { upstream: 'llm', model: 'standin-chat', endpoints: ['chat', 'responses'] },
        'chat-once': { upstream: 'llm', model: 'standin-chat', endpoints: ['chat'] },
      },
      access: { 'chat-fast': [{}], 'chat-once': [{}] },
      budgets: {
        perPrincipal: { requestsPerMinute: 1000, tokensPerMinute: 1_000_000 },
        perModel: { 'chat-once': { requestsPerMinute: 1 } },
      },
    },
    identity: {
      oidc: {
        issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [key.jwk] }, algorithms: ['ES256'] }],
        maxTokenBytes: 4096,
      },
    },
    audit,
  });
  app = await startRelayApp(module, hosted.pki, logger);
  alice = await workload(hosted.pki, 'alice');

  const honest = await key.sign({ sub: 'alice', email: SECRET_CLAIM });
  const [h, p, s] = honest.split('.');
  const forged = `${h}.${p}.${(s ?? '').slice(0, -4)}AAAA`;
  // Signed by a key the issuer never published (same issuer name, another `kid`).
  const foreign = await (await issuerKey('k-foreign')).sign({ sub: 'mallory' });
  const oversized = await key.sign({ sub: 'alice', pad: 'x'.repeat(5000) });
  secrets.push(honest, forged, foreign, oversized);

  // Honest calls with a prompt: by token (plain and streamed) and as an mTLS workload.
  const byToken = client({ token: honest });
  const answer = await byToken.chat.completions.create({
    model: 'chat-fast',
    messages: [{ role: 'user', content: PROMPT }],
  });
  outputs.push(answer.choices[0]?.message.content ?? '');
  const stream = await byToken.chat.completions.create({
    model: 'chat-fast',
    messages: [{ role: 'user', content: PROMPT }],
    stream: true,
  });
  let streamed = '';
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
  outputs.push(streamed);
  const byCert = await client({ client: alice }).chat.completions.create({
    model: 'chat-fast',
    messages: [{ role: 'user', content: PROMPT }],
  });
  outputs.push(byCert.choices[0]?.message.content ?? '');
  // Attacks: each is refused, and the refusal is counted and traced.
  for (const token of [forged, foreign, oversized, GARBAGE]) {
    await expect(
      client({ token }).chat.completions.create({
        model: 'chat-fast',
        messages: [{ role: 'user', content: PROMPT }],
      }),
    ).rejects.toBeInstanceOf(OpenAI.APIError);
  }
  // A model outside the catalogue: its name is attacker input and must not become an attribute.
  await expect(
    byToken.chat.completions.create({
      model: 'MODEL-SENTINEL-x',
      messages: [{ role: 'user', content: PROMPT }],
    }),
  ).rejects.toBeInstanceOf(OpenAI.APIError);
  secrets.push('MODEL-SENTINEL-x');
  // A budget: the second call of the minute is refused before any upstream call.
  const once = { model: 'chat-once', messages: [{ role: 'user' as const, content: PROMPT }] };
  outputs.push((await byToken.chat.completions.create(once)).choices[0]?.message.content ?? '');
  await expect(byToken.chat.completions.create(once)).rejects.toBeInstanceOf(OpenAI.APIError);
  const raw = await call(app.port, {
    ca: app.ca,
    path: '/v1/models',
    headers: { authorization: `Bearer ${GARBAGE}` },
  });
  expect(raw.status).toBe(401);
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app?.close();
  await hosted?.standin.close();
});

describe('telemetry attributes never carry a credential, a claim value, a prompt or an output', () => {
  it('the calls were made: outputs came back', () => {
    expect(outputs.filter((o) => o.length >= 8)).toHaveLength(4);
  });

  it('scans every metric point and span attribute: nothing sensitive', async () => {
    const collected = await collect();
    expect(collected.strings.length).toBeGreaterThan(50);
    expect(leaks(collected, [...secrets, ...outputs.filter((o) => o.length >= 8)])).toEqual([]);
  });

  it('control: a token planted in a span attribute is found by the same scan', async () => {
    const planted = secrets[3] ?? '';
    const span = trace.getTracer('control').startSpan('control');
    span.setAttribute('leak', `Bearer ${planted}`);
    span.end();
    const collected = await collect();
    expect(leaks(collected, secrets)).toContain(planted);
  });

  it('spans carry the subject, issuer and scopes at most, of the claims', async () => {
    const collected = await collect();
    const auth = collected.spans.filter((s) => s.name === 'shield.auth');
    expect(auth.length).toBeGreaterThan(0);
    const keys = new Set(auth.flatMap((s) => Object.keys(s.attributes)));
    for (const k of keys) {
      expect([
        'shield.auth.outcome',
        'shield.auth.method',
        'shield.auth.code',
        'shield.auth.route',
        'shield.auth.issuer',
        'enduser.id',
        'enduser.scope',
      ]).toContain(k);
    }
  });
});

describe('instruments', () => {
  it('records decisions, cache lookups, key sets, TLS, connections, upstream, GenAI and certificates', async () => {
    const { metricNames } = await collect();
    for (const name of [
      'shield.auth.decisions',
      'shield.token.cache.lookups',
      'shield.jwks.keys',
      'shield.tls.handshakes',
      'shield.connections.open',
      'shield.upstream.requests',
      'shield.upstream.pool.size',
      'gen_ai.client.token.usage',
      'gen_ai.client.operation.duration',
      'shield.certificate.expiry',
      'shield.llm.budget.refusals',
    ]) {
      expect(metricNames, name).toContain(name);
    }
  });

  it('counts allowed and denied decisions by method, outcome and code', async () => {
    const { resourceMetrics } = await reader.collect();
    const decisions = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === 'shield.auth.decisions');
    const points = (decisions?.dataPoints ?? []) as { attributes: Attributes; value: number }[];
    const seen = points.map(
      (p) =>
        `${p.attributes['shield.auth.outcome']} ${p.attributes['shield.auth.method']} ${p.attributes['shield.auth.code']}`,
    );
    expect(seen).toEqual(
      expect.arrayContaining([
        'allow oidc none',
        'allow mtls none',
        'deny none ERR_TOKEN_SIGNATURE_INVALID',
        'deny none ERR_TOKEN_KEY_NOT_FOUND',
        'deny none ERR_TOKEN_TOO_LARGE',
        'deny none ERR_TOKEN_MALFORMED',
      ]),
    );
  });

  it('counts the budget refusal by limit and catalogue model', async () => {
    const { resourceMetrics } = await reader.collect();
    const refusals = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === 'shield.llm.budget.refusals');
    const points = (refusals?.dataPoints ?? []) as { attributes: Attributes; value: number }[];
    expect(
      points.map((p) => [p.attributes['shield.llm.limit'], p.attributes['gen_ai.request.model'], p.value]),
    ).toEqual([['requests', 'chat-once', 1]]);
  });

  it('propagates W3C traceparent to the upstream: the stand-in saw the shield.upstream span', () => {
    const upstream = spans.getFinishedSpans().filter((s) => s.name === 'shield.upstream');
    const recorded = hosted.standin.requests
      .map((r) => r.headers['traceparent'])
      .filter((t) => t !== undefined);
    expect(recorded.length).toBeGreaterThan(0);
    for (const header of recorded) {
      const [, traceId, spanId] = String(header).split('-');
      expect(
        upstream.some((s) => s.spanContext().traceId === traceId && s.spanContext().spanId === spanId),
      ).toBe(true);
    }
  });
});
