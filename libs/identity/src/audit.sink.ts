import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { describeValue } from '@shield/core';
import type { AuditEvent, AuditSink } from './audit.interface.js';

/**
 * The default sink: one JSON line per decision through Nest's `Logger` (context `ShieldAudit`),
 * so it follows whatever logger the application installed. With Nest's own `ConsoleLogger`, the
 * line's formatting (local-time stamp, colours) costs more than the whole identity check of a
 * client reusing its token: see {@link JsonLinesAuditSink} and `bench/identity/README.md`.
 */
@Injectable()
export class LoggerAuditSink implements AuditSink {
  private readonly logger = new Logger('ShieldAudit');

  record(event: AuditEvent): void {
    this.logger.log(JSON.stringify(event));
  }
}

/** Where {@link JsonLinesAuditSink} writes: `process.stdout`, a file stream, a socket... */
export interface AuditLineStream {
  write(chunk: string): unknown;
}

// A flush is forced past this many characters, so one busy event-loop turn cannot hold an
// unbounded batch (about 200 events).
const MAX_BATCH_CHARS = 64 * 1024;

/**
 * An audit sink for the hot path: one JSON line per decision (the event's fixed key order, nothing
 * added), written straight to a stream without Nest's `Logger`, the lines of one event-loop turn
 * joined into a single write. The lines are written at the end of the current turn (or at once
 * past 64 KiB, and at application shutdown); a failing stream is reported through Nest's `Logger`
 * and never reaches the request.
 *
 * @example
 * IdentityModule.forRoot({ oidc, audit: { sink: new JsonLinesAuditSink(process.stdout) } })
 */
export class JsonLinesAuditSink implements AuditSink, OnApplicationShutdown {
  private pending = '';
  private scheduled = false;
  private readonly logger = new Logger('ShieldAudit');

  constructor(private readonly stream: AuditLineStream = process.stdout) {
    const write: unknown = (stream as Partial<AuditLineStream> | null)?.write;
    if (typeof write !== 'function') {
      throw new TypeError(
        `JsonLinesAuditSink needs a stream with a write(chunk) method, got ${describeValue(stream)}`,
      );
    }
  }

  record(event: AuditEvent): void {
    this.pending += `${JSON.stringify(event)}\n`;
    if (this.pending.length >= MAX_BATCH_CHARS) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  /** Writes the lines not yet written. */
  flush(): void {
    if (this.pending === '') return;
    const chunk = this.pending;
    this.pending = '';
    try {
      this.stream.write(chunk);
    } catch (err) {
      // Name only: a stream error can quote what it failed to write.
      this.logger.error(`audit stream write failed: ${err instanceof Error ? err.name : typeof err}`);
    }
  }

  /** Called by Nest when the sink is the module's `AUDIT_SINK`: nothing decided is left unwritten. */
  onApplicationShutdown(): void {
    this.flush();
  }

  private readonly flushSoon = (): void => {
    this.scheduled = false;
    this.flush();
  };
}
