/**
 * Where the audit sinks report: Nest's Logger of the application that imports IdentityModule. The
 * sinks' own behaviour (lines, batching, options) is unit-tested beside them (audit.sink.spec.ts);
 * these start an application context, so they sit with the other specs that build apps and share
 * the harness's CaptureLogger.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IdentityModule, JsonLinesAuditSink, LoggerAuditSink } from '@inference-shield/identity';
import { eventOf } from '@inference-shield/identity/internal';
import { ALICE as alice } from '../../libs/identity/test/identity.fixtures.js';
import { CaptureLogger } from '../support/harness.js';

describe('LoggerAuditSink (opt-in)', () => {
  it('gives Nest’s Logger one JSON line per decision, context ShieldAudit', async () => {
    const logger = new CaptureLogger();
    @Module({ imports: [IdentityModule.forRoot({ mtls: {} })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger });
    try {
      const event = eventOf('allow', 'GET /x', alice);
      new LoggerAuditSink().record(event);
      expect(logger.lines).toContain(`log {"v":1,${JSON.stringify(event).slice(1)} ShieldAudit`);
    } finally {
      await app.close();
    }
  });
});

describe('JsonLinesAuditSink', () => {
  it('reports a failing stream by error name, and never throws into the request', async () => {
    const logger = new CaptureLogger();
    @Module({ imports: [IdentityModule.forRoot({ mtls: {} })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger });
    try {
      const sink = new JsonLinesAuditSink({
        write: () => {
          throw new RangeError('cannot write {"subject":"alice"}');
        },
      });
      expect(() => sink.record(eventOf('allow', 'GET /x', alice))).not.toThrow();
      expect(() => sink.flush()).not.toThrow();
      expect(logger.lines).toContainEqual(
        expect.stringMatching(/^error audit stream write failed: RangeError .*ShieldAudit$/),
      );
      expect(logger.lines.join('\n')).not.toContain('alice');
    } finally {
      await app.close();
    }
  });

  it('survives an asynchronous stream error, reporting its name only', async () => {
    const logger = new CaptureLogger();
    @Module({ imports: [IdentityModule.forRoot({ mtls: {} })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger });
    try {
      const stream = Object.assign(new EventEmitter(), { write: () => true });
      const sink = new JsonLinesAuditSink(stream);
      sink.record(eventOf('allow', 'GET /x', alice));
      sink.flush();
      // Without the sink's listener, emitting 'error' would throw here (and crash a server).
      expect(() =>
        stream.emit('error', new Error('EACCES: /var/log/audit {"subject":"alice"}')),
      ).not.toThrow();
      expect(logger.lines).toContainEqual(
        expect.stringMatching(/^error audit stream failed: Error .*ShieldAudit$/),
      );
      expect(logger.lines.join('\n')).not.toContain('alice');
    } finally {
      await app.close();
    }
  });
});
