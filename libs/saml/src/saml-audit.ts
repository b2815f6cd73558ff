import { Logger } from '@nestjs/common';
import type { ShieldErrorCode } from '@inference-shield/core/internal';

/**
 * One SAML login or grant decision. The same shape as `@inference-shield/identity`'s `AuditEvent`, so the
 * identity module's sink can be passed as is. It names who and where, never what: no assertion,
 * no attribute values, no token.
 */
export interface SamlAuditEvent {
  /** ISO 8601 time of the decision. */
  readonly time: string;
  readonly decision: 'allow' | 'deny';
  /** `POST /saml/acs` or `POST /oauth/token`. */
  readonly route: string;
  readonly method: 'saml';
  /** The verified NameID (allow only: a refused assertion's NameID is attacker-controlled). */
  readonly subject?: string;
  /** The IdP entity ID (allow only). */
  readonly issuer?: string;
  /** Scopes granted in the local token (allow only). */
  readonly scopes?: readonly string[];
  /** The refusal code (deny only). */
  readonly code?: ShieldErrorCode;
}

/** Where SAML decisions go. Called on the request path: keep it cheap, never throw. */
export interface SamlAuditSink {
  record(event: SamlAuditEvent): void;
}

/** The default sink: one JSON line per decision through Nest's `Logger` (context `ShieldAudit`). */
export class LoggerSamlAuditSink implements SamlAuditSink {
  private readonly logger = new Logger('ShieldAudit');

  record(event: SamlAuditEvent): void {
    this.logger.log(JSON.stringify(event));
  }
}
