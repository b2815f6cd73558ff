/**
 * `@inference-shield/identity/otel-audit`: an audit sink that emits OpenTelemetry log records
 * through `@opentelemetry/api-logs` (an optional peer, loaded only by this entry).
 *
 * @packageDocumentation
 */
import { logs, SeverityNumber, type Logger, type LoggerProvider } from '@opentelemetry/api-logs';
import { assertKnownKeys, describeValue } from '@inference-shield/core/internal';
import { AUDIT_SCHEMA_VERSION, AuditLines } from './audit.event.js';
import type { AuditEvent, AuditSink } from './audit.interface.js';

/** Options of {@link OpenTelemetryAuditSink}. */
export interface OpenTelemetryAuditSinkOptions {
  /** Where the records go; default the global provider (`logs.getLoggerProvider()`, a no-op without an SDK). */
  readonly loggerProvider?: LoggerProvider;
}

const SCOPE = '@inference-shield/identity';

/**
 * An audit sink for an OpenTelemetry logs pipeline: one log record per event, `eventName`
 * `shield.audit`, severity INFO, its body the same JSON line the JSON-lines sink writes
 * (`{"v":1,…}`, docs/audit-events.md), and the fields an operator filters on as attributes
 * (`shield.audit.v`, `shield.audit.decision`, `shield.audit.route`, `shield.audit.code`). Batching
 * and export are the SDK's (a `BatchLogRecordProcessor`): `record()` only hands the record over.
 *
 * @example
 * IdentityModule.forRoot({ oidc, audit: { sink: new OpenTelemetryAuditSink() } })
 */
export class OpenTelemetryAuditSink implements AuditSink {
  private readonly logger: Logger;
  private readonly lines = new AuditLines();

  constructor(options: OpenTelemetryAuditSinkOptions = {}) {
    assertKnownKeys('OpenTelemetryAuditSink options', options, ['loggerProvider']);
    const provider: unknown = options.loggerProvider ?? logs.getLoggerProvider();
    if (typeof (provider as Partial<LoggerProvider> | null)?.getLogger !== 'function') {
      throw new TypeError(
        `"loggerProvider" must have a getLogger(name) method, got ${describeValue(options.loggerProvider)}`,
      );
    }
    this.logger = (provider as LoggerProvider).getLogger(SCOPE);
  }

  record(event: AuditEvent): void {
    this.logger.emit({
      eventName: 'shield.audit',
      severityNumber: SeverityNumber.INFO,
      severityText: 'INFO',
      body: this.lines.of(event),
      attributes: {
        'shield.audit.v': AUDIT_SCHEMA_VERSION,
        'shield.audit.decision': event.decision,
        'shield.audit.route': event.route,
        ...(event.code !== undefined ? { 'shield.audit.code': event.code } : {}),
      },
    });
  }
}
