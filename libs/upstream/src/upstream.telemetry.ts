import {
  context,
  metrics,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type BatchObservableCallback,
  type Meter,
  type Observable,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import {
  certificateExpiries,
  observeCertificateExpiry,
  type CertificateExpiry,
  type ShieldErrorCode,
} from '@inference-shield/core/internal';
import type { UpstreamStats } from './upstream-stats.js';
import type { UpstreamTlsMaterial } from './upstream-tls.js';

/**
 * OpenTelemetry of one upstream client, through `@opentelemetry/api` only (a no-op unless the
 * application registered an SDK before the app was created): one client span per call, with the
 * W3C `traceparent` of that span injected into the request by the registered propagator, and the
 * client's own counters read at collection time. Never a URL path or query, a header, a body.
 * See docs/telemetry.md.
 */
const SCOPE = '@inference-shield/upstream';

/** What the pool gauge reads: undici's pool figures, summed over the client's pools. */
export interface UpstreamPoolFigures {
  readonly connected: number;
  readonly free: number;
  readonly pending: number;
  readonly running: number;
}

/** The sources an upstream client hands to {@link UpstreamTelemetry}. */
export interface UpstreamTelemetrySources {
  readonly stats: () => UpstreamStats;
  readonly pool: () => UpstreamPoolFigures;
  readonly material: () => UpstreamTlsMaterial;
  readonly files: { readonly cert?: string; readonly ca?: string };
}

/** One certificate an upstream client uses, with its end (for health checks): never key material. */
export interface UpstreamCertificateValidity {
  /** `upstream_client`: the client certificate's leaf; `upstream_ca`: a CA certificate trusted for the upstream. */
  readonly role: 'upstream_client' | 'upstream_ca';
  /** The file it was read from, or the option that gave it (`upstreams.<name>.clientCertificate`). */
  readonly file: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  readonly fingerprint: string;
  /** `notAfter`. */
  readonly validTo: Date;
  /**
   * The client certificate comes from `clientCertificateSource` (a SPIFFE X.509-SVID, a secret
   * manager): its source renews it well before its end, however short its life.
   */
  readonly renewedBySource: boolean;
}

/** The instruments of one upstream client. */
export class UpstreamTelemetry {
  private readonly tracer: Tracer;
  private readonly base: Attributes;
  private readonly stopMetrics: () => void;
  private readonly stopCertificates: () => void;
  private readonly readCertificates: () => readonly CertificateExpiry[];
  private readonly files: UpstreamTelemetrySources['files'];

  constructor(
    readonly name: string,
    origin: string,
    sources: UpstreamTelemetrySources,
    meter: Meter = metrics.getMeter(SCOPE),
    tracer: Tracer = trace.getTracer(SCOPE),
  ) {
    this.tracer = tracer;
    this.files = sources.files;
    const url = new URL(origin);
    this.base = Object.freeze({
      'shield.upstream': name,
      'server.address': url.hostname,
      'server.port': url.port === '' ? 443 : Number(url.port),
    });
    const byUpstream = Object.freeze({ 'shield.upstream': name });
    const requests = meter.createObservableCounter('shield.upstream.requests', {
      description: 'Upstream requests, by upstream and outcome (response, error, refused before leaving).',
      unit: '{request}',
    });
    const errors = meter.createObservableCounter('shield.upstream.errors', {
      description: 'Upstream failures, by upstream and error code.',
      unit: '{error}',
    });
    const handshakes = meter.createObservableCounter('shield.upstream.handshakes', {
      description: 'TLS handshakes to the upstream, by upstream and whether the session was resumed.',
      unit: '{handshake}',
    });
    const pool = meter.createObservableGauge('shield.upstream.pool.size', {
      description:
        'Connections of the upstream pool, by state (connected, free), and requests pending or running.',
      unit: '{connection}',
    });
    const observables: Observable[] = [requests, errors, handshakes, pool];
    const ok = Object.freeze({ ...byUpstream, 'shield.upstream.outcome': 'response' });
    const failed = Object.freeze({ ...byUpstream, 'shield.upstream.outcome': 'error' });
    const refused = Object.freeze({ ...byUpstream, 'shield.upstream.outcome': 'refused' });
    const full = Object.freeze({ ...byUpstream, 'shield.tls.resumed': false });
    const resumed = Object.freeze({ ...byUpstream, 'shield.tls.resumed': true });
    const states = (['connected', 'free', 'pending', 'running'] as const).map(
      (state) => [state, Object.freeze({ ...byUpstream, 'shield.upstream.pool.state': state })] as const,
    );
    const byCode = new Map<string, Attributes>();
    const callback: BatchObservableCallback = (result) => {
      const s = sources.stats();
      let errorCount = 0;
      for (const [code, n] of Object.entries(s.errors) as [ShieldErrorCode, number][]) {
        errorCount += n;
        let attributes = byCode.get(code);
        if (attributes === undefined) {
          attributes = Object.freeze({ ...byUpstream, 'error.type': code });
          byCode.set(code, attributes);
        }
        result.observe(errors, n, attributes);
      }
      result.observe(requests, s.responses, ok);
      result.observe(requests, Math.max(0, errorCount - s.refused), failed);
      result.observe(requests, s.refused, refused);
      result.observe(handshakes, s.handshakes - s.resumedHandshakes, full);
      result.observe(handshakes, s.resumedHandshakes, resumed);
      const figures = sources.pool();
      for (const [state, attributes] of states) result.observe(pool, figures[state], attributes);
    };
    meter.addBatchObservableCallback(callback, observables);
    this.stopMetrics = () => meter.removeBatchObservableCallback(callback, observables);
    // Core's meter, as the server's certificates: one `shield.certificate.expiry` for every package
    // (an exporter such as Prometheus needs a single metric family per name).
    this.readCertificates = () => {
      const m = sources.material();
      return certificateExpiries([
        {
          role: 'upstream_client',
          file: sources.files.cert ?? `upstreams.${name}.clientCertificate`,
          pem: m.cert,
        },
        { role: 'upstream_ca', file: sources.files.ca ?? `upstreams.${name}.ca`, pem: m.ca },
      ]);
    };
    this.stopCertificates = observeCertificateExpiry(this.readCertificates);
  }

  /** The certificates in use, as the expiry metric observes them (parsed once per material). */
  certificates(): UpstreamCertificateValidity[] {
    // A client certificate read from no file came from `clientCertificateSource`.
    const fromSource = this.files.cert === undefined;
    return this.readCertificates().map((e) => ({
      role: e.role === 'upstream_ca' ? 'upstream_ca' : 'upstream_client',
      file: e.file,
      fingerprint: e.fingerprint,
      validTo: new Date(e.endsAt),
      renewedBySource: e.role === 'upstream_client' && fromSource,
    }));
  }

  /**
   * Starts the client span of one call and injects its context into `headers` (W3C
   * `traceparent`, with the propagator the application registered; none: nothing is added).
   */
  start(method: string, headers: Record<string, string | string[]>): Span {
    const span = this.tracer.startSpan('shield.upstream', { kind: SpanKind.CLIENT });
    if (span.isRecording()) {
      span.setAttributes(this.base);
      span.setAttribute('http.request.method', method);
    }
    propagation.inject(trace.setSpan(context.active(), span), headers);
    return span;
  }

  /** Ends a call's span with the response status. */
  static answered(span: Span, status: number): void {
    if (span.isRecording()) span.setAttribute('http.response.status_code', status);
    span.end();
  }

  /** Ends a call's span with the failure's code (never its message). */
  static failed(span: Span, code: string): void {
    if (span.isRecording()) {
      span.setAttribute('error.type', code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    }
    span.end();
  }

  /** Stops every observer (the client closed). */
  close(): void {
    this.stopMetrics();
    this.stopCertificates();
  }
}
