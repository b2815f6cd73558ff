/**
 * Capture for the "nothing sensitive in logs" checks: an audit sink that keeps every event, and a
 * search for any token (or any 16-character piece of its signature). Nest's log lines are the
 * harness's CaptureLogger (test/support/harness.ts).
 */
import type { AuditEvent, AuditSink } from '@inference-shield/identity';
import { signatureOf } from './token-forge.js';

/** An audit sink that keeps the events (and their JSON, which is what a real sink would write). */
export class CaptureAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  readonly lines: string[] = [];

  record(event: AuditEvent): void {
    this.events.push(event);
    this.lines.push(JSON.stringify(event));
  }
}

/** Every token a test sent, to search the logs for afterwards. */
export class TokenLedger {
  private readonly tokens = new Set<string>();

  /** Records `token` and returns it, so a call site reads `ledger.add(await forge.sign())`. */
  add(token: string): string {
    this.tokens.add(token);
    return token;
  }

  get size(): number {
    return this.tokens.size;
  }

  /**
   * Lines holding a whole token, its payload segment, or any 16-character substring of its
   * signature segment (a log that truncates or splits a token still leaks it).
   */
  leaks(lines: readonly string[]): string[] {
    const needles = new Set<string>();
    for (const token of this.tokens) {
      needles.add(token);
      const parts = token.split('.');
      if (parts[1] !== undefined && parts[1].length >= 16) needles.add(parts[1]);
      const signature = signatureOf(token);
      for (let i = 0; i + 16 <= signature.length; i++) needles.add(signature.slice(i, i + 16));
    }
    const found: string[] = [];
    for (const line of lines) {
      for (const needle of needles) {
        if (line.includes(needle)) {
          found.push(line.slice(0, 200));
          break;
        }
      }
    }
    return found;
  }
}
