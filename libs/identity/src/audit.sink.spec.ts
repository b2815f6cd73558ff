import { afterEach, describe, expect, it, vi } from 'vitest';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ShieldError } from '@shield/core';
import type { AuditEvent } from './audit.interface.js';
import { JsonLinesAuditSink, LoggerAuditSink } from './audit.sink.js';
import { CaptureLogger } from './identity.e2e.fixtures.js';
import { eventOf } from './identity.guard.js';
import { IdentityModule } from './identity.module.js';
import type { ShieldPrincipal } from './principal.interface.js';

const alice: ShieldPrincipal = Object.freeze({
  method: 'oidc',
  subject: 'alice',
  issuer: 'https://idp.example',
  scopes: Object.freeze(['models:infer']),
  claims: Object.freeze({}),
});

/** A stream that keeps every chunk it is given. */
function memoryStream() {
  const chunks: string[] = [];
  return { chunks, write: (chunk: string) => chunks.push(chunk) };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('eventOf: the audit event of a decision', () => {
  it.each([
    Date.UTC(2026, 10, 26, 6, 2, 33, 0),
    Date.UTC(2026, 10, 26, 6, 2, 33, 7),
    Date.UTC(2026, 10, 26, 6, 2, 33, 42),
    Date.UTC(2026, 10, 26, 6, 2, 33, 999),
    Date.UTC(2026, 10, 26, 6, 2, 34, 1),
    Date.UTC(1999, 11, 31, 23, 59, 59, 999),
  ])('stamps the exact millisecond, in toISOString form (%i)', (now) => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(now);
    expect(eventOf('allow', 'GET /x', alice).time).toBe(new Date(now).toISOString());
  });

  it('has one fixed key order, and names who and where only', () => {
    const deny = eventOf('deny', 'GET /x', alice, new ShieldError('ERR_INSUFFICIENT_SCOPE'));
    expect(Object.keys(JSON.parse(JSON.stringify(deny)) as object)).toEqual([
      'time',
      'decision',
      'route',
      'method',
      'subject',
      'issuer',
      'scopes',
      'code',
    ]);
    expect(Object.keys(JSON.parse(JSON.stringify(eventOf('deny', 'GET /x'))) as object)).toEqual([
      'time',
      'decision',
      'route',
    ]);
  });
});

describe('LoggerAuditSink (the default)', () => {
  it('gives Nest’s Logger one JSON line per decision, context ShieldAudit', async () => {
    const logger = new CaptureLogger();
    @Module({ imports: [IdentityModule.forRoot({ mtls: {} })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger });
    try {
      const event = eventOf('allow', 'GET /x', alice);
      new LoggerAuditSink().record(event);
      expect(logger.lines).toContain(`log ${JSON.stringify(event)} ShieldAudit`);
    } finally {
      await app.close();
    }
  });
});

describe('JsonLinesAuditSink', () => {
  it('writes one JSON line per event, the lines of one event-loop turn in one write', async () => {
    const stream = memoryStream();
    const sink = new JsonLinesAuditSink(stream);
    const events: AuditEvent[] = [eventOf('allow', 'GET /a', alice), eventOf('deny', 'GET /b')];
    for (const e of events) sink.record(e);
    expect(stream.chunks).toEqual([]);
    await nextTurn();
    expect(stream.chunks).toHaveLength(1);
    expect(stream.chunks[0]?.split('\n')).toEqual([...events.map((e) => JSON.stringify(e)), '']);
    sink.record(events[0] as AuditEvent);
    await nextTurn();
    expect(stream.chunks).toHaveLength(2);
  });

  it('does not hold more than 64 KiB: a busy turn writes as it goes', () => {
    const stream = memoryStream();
    const sink = new JsonLinesAuditSink(stream);
    const event = eventOf('allow', `GET /${'x'.repeat(1000)}`, alice);
    for (let i = 0; i < 200; i++) sink.record(event);
    expect(stream.chunks.length).toBeGreaterThanOrEqual(2);
    for (const chunk of stream.chunks) expect(chunk.length).toBeLessThan(64 * 1024 + 2048);
    sink.flush();
    expect(stream.chunks.join('').split('\n')).toHaveLength(201);
  });

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

  it('refuses something that is not a stream, at construction', () => {
    expect(() => new JsonLinesAuditSink({} as never)).toThrow(TypeError);
    expect(() => new JsonLinesAuditSink(null as never)).toThrow(/write\(chunk\)/);
  });

  it('as the module’s sink, writes what is pending when the application shuts down', async () => {
    const stream = memoryStream();
    const sink = new JsonLinesAuditSink(stream);
    @Module({ imports: [IdentityModule.forRoot({ mtls: {}, audit: { sink } })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const shutdown = vi.spyOn(sink, 'onApplicationShutdown');
    sink.record(eventOf('allow', 'GET /x', alice));
    await app.close();
    expect(shutdown).toHaveBeenCalledOnce();
    expect(stream.chunks).toHaveLength(1);
  });
});
