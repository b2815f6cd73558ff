import {
  createNoopMeter,
  metrics,
  ProxyTracerProvider,
  SpanKind,
  trace,
  type Attributes,
  type BatchObservableCallback,
  type Counter,
  type Meter,
  type Observable,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';
import type { AuditEvent } from './audit.interface.js';
import type { TokenVerifierStats } from './tokens/token-verifier.js';

/**
 * OpenTelemetry instruments of the identity package, through `@opentelemetry/api` only: the
 * application brings the SDK and the exporter. With no SDK registered every call below is the
 * API's no-op. Instruments are created when the module starts (the API's meters have no proxy:
 * an SDK must be registered before the app is created), never per request. See docs/telemetry.md.
 */
const SCOPE = '@inference-shield/identity';
const AUTH_SPAN: SpanOptions = Object.freeze({ kind: SpanKind.INTERNAL });
const NOOP_METER_CLASS: unknown = createNoopMeter().constructor;

/**
 * This package's tracer when a tracer provider is registered now, else `undefined` (like meters,
 * a provider registered after the app was created is not used for decisions).
 */
function registeredTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  if (provider instanceof ProxyTracerProvider && provider.getDelegateTracer(SCOPE) === undefined) {
    return undefined;
  }
  return trace.getTracer(SCOPE);
}

/**
 * One access decision: a counter add with an attribute object built once per (outcome, method,
 * code), and one `shield.auth` span whose attributes are set only when an SDK records it. The
 * span carries the subject, issuer and scopes (the only claim values allowed), never a token.
 */
export class AuthTelemetry {
  private readonly decisions: Counter | undefined;
  private readonly tracer: Tracer | undefined;
  // Bounded: outcome (2) × method (a handful) × code (the catalogue).
  private readonly attributes = new Map<string, Attributes>();

  constructor(meter: Meter = metrics.getMeter(SCOPE), tracer: Tracer | undefined = registeredTracer()) {
    // Without an SDK (the API's no-op meter, no tracer provider registered) a decision costs one
    // check: no attribute lookup, no non-recording span allocated per request.
    this.decisions =
      meter.constructor === NOOP_METER_CLASS
        ? undefined
        : meter.createCounter('shield.auth.decisions', {
            description: 'Access decisions of the guard, by authentication method, outcome and refusal code.',
            unit: '{decision}',
          });
    this.tracer = tracer;
  }

  /** Records the decision an audit event describes (called with every event the guard records). */
  decided(event: AuditEvent): void {
    if (this.decisions === undefined && this.tracer === undefined) return;
    const method = event.method ?? 'none';
    const code = event.code ?? 'none';
    const key = `${event.decision} ${method} ${code}`;
    let attributes = this.attributes.get(key);
    if (attributes === undefined) {
      attributes = Object.freeze({
        'shield.auth.outcome': event.decision,
        'shield.auth.method': method,
        'shield.auth.code': code,
      });
      this.attributes.set(key, attributes);
    }
    this.decisions?.add(1, attributes);
    if (this.tracer === undefined) return;
    const span = this.tracer.startSpan('shield.auth', AUTH_SPAN);
    if (span.isRecording()) {
      span.setAttributes(attributes);
      span.setAttribute('shield.auth.route', event.route);
      if (event.subject !== undefined) span.setAttribute('enduser.id', event.subject);
      if (event.issuer !== undefined) span.setAttribute('shield.auth.issuer', event.issuer);
      if (event.scopes !== undefined) span.setAttribute('enduser.scope', event.scopes.join(' '));
    }
    span.end();
  }
}

const HIT = Object.freeze({ 'shield.token.cache.result': 'hit' });
const MISS = Object.freeze({ 'shield.token.cache.result': 'miss' });
const CONNECTION_HIT = Object.freeze({ 'shield.token.cache.result': 'connection_hit' });

/**
 * Observes a token verifier's own counters (cache lookups, JWKS fetches and failures, key-set age)
 * at collection time: nothing is added to the request path. Returns the function that stops it.
 */
export function observeTokenVerifier(
  source: { stats(): TokenVerifierStats },
  now: () => number = Date.now,
  meter: Meter = metrics.getMeter(SCOPE),
): () => void {
  const lookups = meter.createObservableCounter('shield.token.cache.lookups', {
    description: 'Verified-token cache lookups, by result (connection_hit: same connection and header).',
    unit: '{lookup}',
  });
  const entries = meter.createObservableGauge('shield.token.cache.entries', {
    description: 'Verified tokens held in the cache.',
    unit: '{token}',
  });
  const age = meter.createObservableGauge('shield.jwks.age', {
    description: 'Seconds since the last successful JWKS fetch, per issuer.',
    unit: 's',
  });
  const fetches = meter.createObservableCounter('shield.jwks.fetches', {
    description: 'JWKS documents requested, per issuer (start-up, refresh, unknown kid).',
    unit: '{fetch}',
  });
  const failures = meter.createObservableCounter('shield.jwks.failures', {
    description: 'Key-set refreshes that failed (discovery, fetch or no usable key), per issuer.',
    unit: '{failure}',
  });
  const keys = meter.createObservableGauge('shield.jwks.keys', {
    description: 'Usable signing keys held, per issuer.',
    unit: '{key}',
  });
  const observables: Observable[] = [lookups, entries, age, fetches, failures, keys];
  const callback: BatchObservableCallback = (result) => {
    const stats = source.stats();
    result.observe(lookups, stats.cacheHits, HIT);
    result.observe(lookups, stats.cacheMisses, MISS);
    result.observe(lookups, stats.connectionMemoHits, CONNECTION_HIT);
    result.observe(entries, stats.cacheEntries);
    const at = now();
    for (const [issuer, s] of Object.entries(stats.issuers)) {
      const byIssuer = { 'shield.issuer': issuer };
      if (s.lastFetchOk !== undefined)
        result.observe(age, Math.max(0, (at - s.lastFetchOk) / 1000), byIssuer);
      result.observe(fetches, s.jwksFetches, byIssuer);
      result.observe(failures, s.jwksFailures, byIssuer);
      result.observe(keys, s.keys, byIssuer);
    }
  };
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
