import { describe, expect, it } from 'vitest';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { ShieldError } from '@inference-shield/core/internal';
import { eventOf } from './audit.event.js';
import { OpenTelemetryAuditSink } from './otel-audit.js';
import { ALICE } from '../test/identity.fixtures.js';

describe('OpenTelemetryAuditSink', () => {
  it('emits one log record per event: the v1 JSON line as body, the filter fields as attributes', () => {
    const exporter = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter })] });
    const sink = new OpenTelemetryAuditSink({ loggerProvider: provider });
    sink.record(eventOf('allow', 'GET /x', ALICE));
    sink.record(eventOf('deny', 'GET /y', undefined, new ShieldError('ERR_TOKEN_MISSING')));
    const records = exporter.getFinishedLogRecords();
    expect(records).toHaveLength(2);
    const [allow, deny] = records;
    expect(allow?.eventName).toBe('shield.audit');
    expect(allow?.severityText).toBe('INFO');
    expect(JSON.parse(String(allow?.body))).toMatchObject({ v: 1, decision: 'allow', route: 'GET /x' });
    expect(String(allow?.body).startsWith('{"v":1,"time":')).toBe(true);
    expect(allow?.attributes).toEqual({
      'shield.audit.v': 1,
      'shield.audit.decision': 'allow',
      'shield.audit.route': 'GET /x',
    });
    expect(deny?.attributes).toMatchObject({ 'shield.audit.code': 'ERR_TOKEN_MISSING' });
  });

  it.each([
    [{ loggerProvider: {} }, /"loggerProvider" must have a getLogger/],
    [{ exporter: 1 }, /unknown option "exporter"/],
  ])('refuses bad options at construction: %j', (options, message) => {
    expect(() => new OpenTelemetryAuditSink(options as never)).toThrow(message);
  });

  it('without an SDK, records go to the no-op provider', () => {
    expect(() => new OpenTelemetryAuditSink().record(eventOf('allow', 'GET /x', ALICE))).not.toThrow();
  });
});
