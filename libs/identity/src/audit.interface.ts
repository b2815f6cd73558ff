import type { ShieldErrorCode } from '@inference-shield/core/internal';
import type { AuthMethod } from './policy.interface.js';

/** The outcome of one access decision. */
export type AuditDecision = 'allow' | 'deny';

/**
 * One access decision, as recorded by the guard. It names who and where, never what: no token,
 * no claim values beyond subject, issuer and scopes, no header, no body.
 */
export interface AuditEvent {
  /** ISO 8601 time of the decision. */
  readonly time: string;
  readonly decision: AuditDecision;
  /** The route template, e.g. `POST /v2/models/:name/infer` (never the request URL and its query). */
  readonly route: string;
  /** How the caller authenticated, when it got that far. */
  readonly method?: AuthMethod;
  /** Token `sub`, or the certificate's SPIFFE ID or common name. */
  readonly subject?: string;
  readonly spiffeId?: string;
  /** Token `iss`, or the client certificate's issuer DN. */
  readonly issuer?: string;
  readonly scopes?: readonly string[];
  /** The refusal code, on a deny. */
  readonly code?: ShieldErrorCode;
}

/**
 * Where audit events go. `record` is called on the request path: keep it cheap and non-blocking,
 * and never throw (a throwing sink is reported once per failure and otherwise ignored).
 */
export interface AuditSink {
  record(event: AuditEvent): void;
}
