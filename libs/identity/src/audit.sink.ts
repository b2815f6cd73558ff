import { Injectable, Logger } from '@nestjs/common';
import type { AuditEvent, AuditSink } from './audit.interface.js';

/**
 * The default sink: one JSON line per decision through Nest's `Logger` (context `ShieldAudit`),
 * so it follows whatever logger the application installed.
 */
@Injectable()
export class LoggerAuditSink implements AuditSink {
  private readonly logger = new Logger('ShieldAudit');

  record(event: AuditEvent): void {
    this.logger.log(JSON.stringify(event));
  }
}
