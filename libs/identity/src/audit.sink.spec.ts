import { afterEach, describe, expect, it, vi } from 'vitest';
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ShieldError } from '@inference-shield/core/internal';
import { AuditLines, eventOf } from './audit.event.js';
import type { AuditEvent } from './audit.interface.js';
import { JsonLinesAuditSink } from './audit.sink.js';
import { ALICE } from '../test/identity.fixtures.js';
import { AUDIT_SINK } from './identity.constants.js';
import { IdentityModule } from './identity.module.js';
import type { ShieldPrincipal } from './principal.interface.js';

const alice = ALICE;
// A built-in sink's serialiser (each sink owns one): the per-principal cache lives in it.
const lines = new AuditLines();
const auditLine = (event: AuditEvent): string => lines.of(event);
/** What a built-in sink writes for an event: its JSON with the schema version first. */
const versioned = (event: AuditEvent): string => `{"v":1,${JSON.stringify(event).slice(1)}`;

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

describe('auditLine: the serialisation the built-in sinks use', () => {
  const bob: ShieldPrincipal = Object.freeze({
    method: 'mtls',
    subject: 'spiffe://shield.local/ns/a/sa/"quoted"\\path',
    issuer: 'CN=Dev CA\nO=Shield',
    spiffeId: 'spiffe://shield.local/ns/a/sa/"quoted"\\path',
    scopes: Object.freeze([]),
    claims: Object.freeze({}),
  });
  // Every kind of character JSON.stringify treats apart: pairs and lone surrogates, controls,
  // U+2028 (written as is), DEL, quotes and backslashes, in scopes too.
  const carol: ShieldPrincipal = Object.freeze({
    method: 'oidc',
    subject: 'carol \ud83d\ude00 \ud800 x\udc00 \u2028\u007f\u0000\t',
    issuer: 'https://idp.example/ä',
    scopes: Object.freeze(['models:infer', 'a"b', 'c\\d', '\u001f', '\udfff']),
    claims: Object.freeze({}),
  });

  it('is exactly JSON.stringify of the event after "v":1, for every shape and every time, cached or not', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const times = [
      Date.UTC(2026, 10, 26, 6, 2, 33, 7),
      Date.UTC(2026, 10, 26, 6, 2, 34, 999),
      Date.UTC(2027, 0, 1),
    ];
    for (const now of times) {
      vi.setSystemTime(now);
      const events: AuditEvent[] = [
        eventOf('allow', 'GET /x', alice),
        eventOf('allow', 'POST /v2/models/:name/infer', alice),
        eventOf('deny', 'GET /x', alice, new ShieldError('ERR_INSUFFICIENT_SCOPE')),
        eventOf('deny', 'GET /x', alice, new ShieldError('ERR_CLAIMS_NOT_SATISFIED')),
        eventOf('allow', 'GET /x', bob),
        eventOf('allow', 'GET /x', carol),
        eventOf('deny', 'GET /"x"\\', carol, new ShieldError('ERR_INSUFFICIENT_SCOPE')),
        eventOf('deny', 'GET /x', bob, new ShieldError('ERR_CALLER_NOT_ALLOWED')),
        eventOf('deny', 'GET /x'),
        eventOf('deny', 'GET /x', undefined, new ShieldError('ERR_TOKEN_MISSING')),
        { time: 'plain', decision: 'allow', route: 'GET /plain object' },
      ];
      // Twice: the second round is served from the per-principal cache.
      for (let round = 0; round < 2; round += 1) {
        for (const event of events) expect(auditLine(event)).toBe(versioned(event));
      }
    }
  });

  it('keeps events of different routes and codes apart for one principal', () => {
    const a = auditLine(eventOf('deny', 'GET /a', alice, new ShieldError('ERR_INSUFFICIENT_SCOPE')));
    const b = auditLine(eventOf('deny', 'GET /a', alice, new ShieldError('ERR_CALLER_NOT_ALLOWED')));
    const c = auditLine(eventOf('allow', 'GET /a', alice));
    const d = auditLine(eventOf('allow', 'GET /b', alice));
    expect(new Set([a, b, c, d].map((l) => l.slice(l.indexOf('",') + 2))).size).toBe(4);
  });

  it('gives a sink a plain event: the principal behind it is not reachable', () => {
    const event = eventOf('allow', 'GET /x', alice);
    expect(Object.keys(event)).not.toContain('claims');
    expect(Reflect.ownKeys(event).every((k) => typeof k === 'string')).toBe(true);
    expect(JSON.stringify({ ...event })).toBe(JSON.stringify(event));
  });
});

describe('JsonLinesAuditSink', () => {
  it('writes one JSON line per event, many lines per write, each within maxDelayMs', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const stream = memoryStream();
    const sink = new JsonLinesAuditSink(stream, { maxDelayMs: 25 });
    const events: AuditEvent[] = [eventOf('allow', 'GET /a', alice), eventOf('deny', 'GET /b')];
    for (const e of events) sink.record(e);
    vi.advanceTimersByTime(24);
    expect(stream.chunks).toEqual([]);
    sink.record(events[0] as AuditEvent);
    vi.advanceTimersByTime(1);
    // The first line waited 25 ms: all three went out in one write.
    expect(stream.chunks).toHaveLength(1);
    expect(stream.chunks[0]?.split('\n')).toEqual([
      ...[...events, events[0]].map((e) => versioned(e as AuditEvent)),
      '',
    ]);
    sink.record(events[1] as AuditEvent);
    vi.advanceTimersByTime(25);
    expect(stream.chunks).toHaveLength(2);
  });

  it('with maxDelayMs 0, writes the lines of one event-loop turn at the end of that turn', async () => {
    const stream = memoryStream();
    const sink = new JsonLinesAuditSink(stream, { maxDelayMs: 0 });
    sink.record(eventOf('allow', 'GET /a', alice));
    sink.record(eventOf('deny', 'GET /b'));
    expect(stream.chunks).toEqual([]);
    await nextTurn();
    expect(stream.chunks).toHaveLength(1);
    expect(stream.chunks[0]?.split('\n')).toHaveLength(3);
  });

  it('does not hold more than 16 KiB: a burst writes as it goes', () => {
    const stream = memoryStream();
    const sink = new JsonLinesAuditSink(stream);
    const event = eventOf('allow', `GET /${'x'.repeat(1000)}`, alice);
    for (let i = 0; i < 200; i++) sink.record(event);
    expect(stream.chunks.length).toBeGreaterThanOrEqual(10);
    for (const chunk of stream.chunks) expect(chunk.length).toBeLessThan(16 * 1024 + 2048);
    sink.flush();
    expect(stream.chunks.join('').split('\n')).toHaveLength(201);
  });

  it('writes what is pending when the process exits', () => {
    const before = new Set(process.listeners('exit'));
    const stream = memoryStream();
    const sink = new JsonLinesAuditSink(stream, { maxDelayMs: 1000 });
    sink.record({ time: 't', decision: 'allow', route: 'GET /exit' });
    const hooks = process.listeners('exit').filter((l) => !before.has(l));
    // One hook for all sinks, added by the first sink that had something pending in this process.
    const hook = hooks[0] ?? [...before].find((l) => l.name === 'flushAllOnExit');
    expect(hook?.name).toBe('flushAllOnExit');
    hook?.call(process, 0);
    expect(stream.chunks).toEqual(['{"v":1,"time":"t","decision":"allow","route":"GET /exit"}\n']);
  });

  it.each([
    [{ maxDelayMs: -1 }, /maxDelayMs/],
    [{ maxDelayMs: 1001 }, /maxDelayMs/],
    [{ maxDelayMs: 2.5 }, /maxDelayMs/],
    [{ maxDelayMs: '25' }, /maxDelayMs/],
    [{ flushEvery: 1 }, /unknown option "flushEvery"/],
    [{ maxBufferedBytes: 1024 }, /maxBufferedBytes/],
    [{ maxBufferedBytes: 2 ** 31 }, /maxBufferedBytes/],
  ])('refuses bad options at construction: %j', (options, message) => {
    expect(() => new JsonLinesAuditSink(memoryStream(), options as never)).toThrow(message);
  });

  it('parses as one JSON object per line, schema version 1 first', () => {
    const stream = memoryStream();
    const sink = new JsonLinesAuditSink(stream);
    sink.record(eventOf('deny', 'GET /x', alice, new ShieldError('ERR_INSUFFICIENT_SCOPE')));
    sink.record({} as AuditEvent);
    sink.flush();
    const parsed = stream.chunks
      .join('')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({
      v: 1,
      decision: 'deny',
      route: 'GET /x',
      code: 'ERR_INSUFFICIENT_SCOPE',
    });
    expect(Object.keys(parsed[0] ?? {})[0]).toBe('v');
    expect(parsed[1]).toEqual({ v: 1 });
    expect(sink.stats()).toEqual({ written: 2, dropped: 0 });
  });

  it('drops and counts batches while the stream holds more than maxBufferedBytes, and says so', () => {
    const chunks: string[] = [];
    const stream = { writableLength: 0, write: (c: string) => chunks.push(c) };
    const sink = new JsonLinesAuditSink(stream, { maxBufferedBytes: 64 * 1024 });
    const errors = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      sink.record(eventOf('allow', 'GET /a', alice));
      sink.flush();
      stream.writableLength = 64 * 1024 + 1;
      sink.record(eventOf('allow', 'GET /b', alice));
      sink.record(eventOf('allow', 'GET /c', alice));
      sink.flush();
      stream.writableLength = 0;
      sink.record(eventOf('allow', 'GET /d', alice));
      sink.flush();
      expect(chunks.join('')).not.toContain('GET /b');
      expect(chunks.join('')).toContain('GET /d');
      expect(sink.stats()).toEqual({ written: 2, dropped: 2 });
      expect(errors).toHaveBeenCalledWith('audit stream does not keep up: 2 event(s) dropped (2 in all)');
    } finally {
      errors.mockRestore();
    }
  });

  it('is the module’s default sink', async () => {
    @Module({ imports: [IdentityModule.forRoot({ mtls: {} })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      expect(app.get(AUDIT_SINK)).toBeInstanceOf(JsonLinesAuditSink);
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
