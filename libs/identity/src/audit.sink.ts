import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { assertInteger, assertKnownKeys, describeValue } from '@inference-shield/core/internal';
import { AuditLines } from './audit.event.js';
import type { AuditEvent, AuditSink } from './audit.interface.js';

/**
 * An opt-in sink: one JSON line per decision through Nest's `Logger` (context `ShieldAudit`), so
 * it follows whatever logger the application installed. With Nest's own `ConsoleLogger`, the
 * line's formatting (local-time stamp, colours) costs more than the whole identity check of a
 * client reusing its token (16 to 20 % of a small route): the default is {@link JsonLinesAuditSink}.
 * See `bench/identity/README.md`.
 *
 * @example
 * IdentityModule.forRoot({ oidc, audit: { sink: new LoggerAuditSink() } })
 */
@Injectable()
export class LoggerAuditSink implements AuditSink {
  private readonly logger = new Logger('ShieldAudit');
  private readonly lines = new AuditLines();

  record(event: AuditEvent): void {
    this.logger.log(this.lines.of(event));
  }
}

/** Where {@link JsonLinesAuditSink} writes: `process.stdout`, a file stream, a socket... */
export interface AuditLineStream {
  write(chunk: string): unknown;
  /** Bytes the stream holds, not yet written (Node's writable streams have it). */
  readonly writableLength?: number;
}

/** Figures of a {@link JsonLinesAuditSink}, for metrics and health checks. */
export interface JsonLinesAuditSinkStats {
  /** Events handed to the stream. */
  readonly written: number;
  /** Events dropped because the stream held more than `maxBufferedBytes` (it does not keep up). */
  readonly dropped: number;
}

// A flush is forced past this many characters (about 60 events), so a burst cannot build up an
// unbounded batch, and one write carries many lines.
const MAX_BATCH_CHARS = 16 * 1024;
const DEFAULT_MAX_DELAY_MS = 25;
const MAX_DELAY_LIMIT_MS = 1000;
const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
// A stream that does not keep up is reported at most this often (with the count since the last report).
const DROP_REPORT_INTERVAL_MS = 10_000;

/** Options of {@link JsonLinesAuditSink}. */
export interface JsonLinesAuditSinkOptions {
  /**
   * The longest a line waits before it is written, in ms (default 25, at most 1000). `0` writes
   * the lines of each event-loop turn at the end of that turn. Lines also go out as soon as 16 KiB
   * are pending, at application shutdown and when the process exits.
   */
  maxDelayMs?: number;
  /**
   * The most a stream may hold unwritten (its `writableLength`) before new batches are dropped,
   * counted and reported, rather than buffered without bound in memory; default 8 MiB (64 KiB to
   * 1 GiB). A stream without `writableLength` (a plain object with `write`) is never bounded.
   */
  maxBufferedBytes?: number;
}

// Sinks with lines pending, written out synchronously if the process exits first.
const pendingSinks = new Set<JsonLinesAuditSink>();
let exitHooked = false;
function flushAllOnExit(): void {
  for (const sink of pendingSinks) sink.flush();
}

/**
 * The default audit sink, built for the hot path: one JSON line per decision (the event's fixed key order, nothing
 * added), written straight to a stream without Nest's `Logger`, many lines per write: a line waits
 * at most `maxDelayMs` (25 ms by default), or less when 16 KiB are pending, and everything pending
 * is written at application shutdown and at process exit. A write costs a system call (a few µs on
 * a file): batching is what keeps the audit trail cheaper than the check it records. A failing
 * stream is reported through Nest's `Logger` and never reaches the request. Call
 * `app.enableShutdownHooks()`: a process killed by SIGTERM without it runs no shutdown and no exit
 * handler, and the lines of its last `maxDelayMs` are lost (as with any buffered log writer).
 *
 * @example
 * IdentityModule.forRoot({ oidc, audit: { sink: new JsonLinesAuditSink(process.stdout) } })
 */
export class JsonLinesAuditSink implements AuditSink, OnApplicationShutdown {
  private pending = '';
  private pendingEvents = 0;
  private written = 0;
  private dropped = 0;
  private droppedSinceReport = 0;
  private lastDropReport = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private readonly maxDelayMs: number;
  private readonly maxBufferedBytes: number;
  private readonly logger = new Logger('ShieldAudit');
  private readonly lines = new AuditLines();

  constructor(
    private readonly stream: AuditLineStream = process.stdout,
    options: JsonLinesAuditSinkOptions = {},
  ) {
    const write: unknown = (stream as Partial<AuditLineStream> | null)?.write;
    if (typeof write !== 'function') {
      throw new TypeError(
        `JsonLinesAuditSink needs a stream with a write(chunk) method, got ${describeValue(stream)}`,
      );
    }
    assertKnownKeys('JsonLinesAuditSink options', options, ['maxDelayMs', 'maxBufferedBytes']);
    const delay: unknown = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    assertInteger('JsonLinesAuditSink options.maxDelayMs', delay, 0, MAX_DELAY_LIMIT_MS);
    this.maxDelayMs = delay;
    const buffered: unknown = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    assertInteger('JsonLinesAuditSink options.maxBufferedBytes', buffered, 64 * 1024, 1024 * 1024 * 1024);
    this.maxBufferedBytes = buffered;
    // An asynchronous stream reports failures as 'error' events: without a listener, one would
    // crash the process. Name only: a stream error can quote what it failed to write.
    const on: unknown = (stream as { on?: unknown }).on;
    if (typeof on === 'function') {
      (on as (event: string, listener: (err: unknown) => void) => unknown).call(stream, 'error', (err) => {
        this.logger.error(`audit stream failed: ${err instanceof Error ? err.name : typeof err}`);
      });
    }
  }

  record(event: AuditEvent): void {
    this.pending += `${this.lines.of(event)}\n`;
    this.pendingEvents += 1;
    if (this.pending.length >= MAX_BATCH_CHARS) this.flush();
    else if (this.timer === undefined) this.schedule();
  }

  /** Writes the lines not yet written. */
  flush(): void {
    if (this.timer !== undefined) {
      if (this.maxDelayMs === 0) clearImmediate(this.timer as NodeJS.Immediate);
      else clearTimeout(this.timer as NodeJS.Timeout);
      this.timer = undefined;
    }
    pendingSinks.delete(this);
    if (this.pending === '') return;
    const chunk = this.pending;
    const events = this.pendingEvents;
    this.pending = '';
    this.pendingEvents = 0;
    // A stream that does not keep up (a blocked pipe, a full disk) would otherwise grow in memory
    // without bound: the batch is dropped, and every dropped event counted and reported.
    const held = this.stream.writableLength;
    if (typeof held === 'number' && held > this.maxBufferedBytes) {
      this.drop(events);
      return;
    }
    try {
      this.stream.write(chunk);
      this.written += events;
    } catch (err) {
      // Counted as dropped; reported below, as every failed write is.
      this.dropped += events;
      // Name only: a stream error can quote what it failed to write.
      this.logger.error(`audit stream write failed: ${err instanceof Error ? err.name : typeof err}`);
    }
  }

  /** Events written and dropped since the sink was created. */
  stats(): JsonLinesAuditSinkStats {
    return { written: this.written, dropped: this.dropped };
  }

  private drop(events: number): void {
    this.dropped += events;
    this.droppedSinceReport += events;
    const now = Date.now();
    if (now - this.lastDropReport >= DROP_REPORT_INTERVAL_MS) {
      this.logger.error(
        `audit stream does not keep up: ${this.droppedSinceReport} event(s) dropped (${this.dropped} in all)`,
      );
      this.lastDropReport = now;
      this.droppedSinceReport = 0;
    }
  }

  /** Called by Nest when the sink is the module's `AUDIT_SINK`: nothing decided is left unwritten. */
  onApplicationShutdown(): void {
    this.flush();
  }

  private schedule(): void {
    if (this.maxDelayMs === 0) {
      this.timer = setImmediate(this.flushSoon);
    } else {
      // Not unref'd: a process whose work is done still waits (at most maxDelayMs) for its last
      // lines to be handed to the stream, which an asynchronous stream needs to write them.
      this.timer = setTimeout(this.flushSoon, this.maxDelayMs);
    }
    pendingSinks.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.once('exit', flushAllOnExit);
    }
  }

  private readonly flushSoon = (): void => {
    this.timer = undefined;
    this.flush();
  };
}
