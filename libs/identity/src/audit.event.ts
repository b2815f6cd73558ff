import type { ShieldErrorCode } from '@inference-shield/core';
import type { AuditDecision, AuditEvent } from './audit.interface.js';
import type { AuthMethod } from './policy.interface.js';
import type { ShieldPrincipal } from './principal.interface.js';

// The JSON of an event after its `time`, per principal and per (decision, route, code): a client
// reusing its token gets the same text on every request but for the time, so the built-in sinks
// serialise it once. Entries go with their principal (principals live as long as their token's
// cache entry); per principal there is at most one entry per route and refusal code. Allowed
// requests, the hot path, are keyed by the route string itself (the policy's, the same string on
// every request, its hash computed once); other events by decision, code and route.
interface Tails {
  readonly allowed: Map<string, string>;
  readonly other: Map<string, string>;
}
const tails = new WeakMap<ShieldPrincipal, Tails>();

/**
 * An audit event as the guard builds it: a plain {@link AuditEvent} to any sink (own enumerable
 * fields in a fixed order, absent facts `undefined`, which JSON leaves out), which also knows the
 * principal it was made from, in a private field no sink can read, so that {@link auditLine} can
 * reuse its serialisation.
 */
export class AuditRecord implements AuditEvent {
  readonly time: string;
  readonly decision: AuditDecision;
  readonly route: string;
  readonly method: AuthMethod | undefined;
  readonly subject: string | undefined;
  readonly spiffeId: string | undefined;
  readonly issuer: string | undefined;
  readonly scopes: readonly string[] | undefined;
  readonly code: ShieldErrorCode | undefined;
  readonly #principal: ShieldPrincipal | undefined;

  constructor(
    time: string,
    decision: AuditDecision,
    route: string,
    principal: ShieldPrincipal | undefined,
    code: ShieldErrorCode | undefined,
  ) {
    this.time = time;
    this.decision = decision;
    this.route = route;
    this.method = principal?.method;
    this.subject = principal?.subject;
    this.spiffeId = principal?.spiffeId;
    this.issuer = principal?.issuer;
    this.scopes = principal && principal.scopes.length > 0 ? principal.scopes : undefined;
    this.code = code;
    this.#principal = principal;
    // Frozen: a sink that edited an event before handing it on would desynchronise the cached text.
    Object.freeze(this);
  }

  /** `JSON.stringify(this)`, with everything after `time` serialised once per principal and route. */
  static lineOf(event: AuditRecord): string {
    const principal = event.#principal;
    if (principal === undefined) return JSON.stringify(event);
    let mine = tails.get(principal);
    if (mine === undefined) {
      mine = { allowed: new Map(), other: new Map() };
      tails.set(principal, mine);
    }
    const plainAllow = event.decision === 'allow' && event.code === undefined;
    const byKey = plainAllow ? mine.allowed : mine.other;
    const key = plainAllow ? event.route : `${event.decision} ${event.code ?? ''} ${event.route}`;
    let tail = byKey.get(key);
    if (tail === undefined) {
      tail = JSON.stringify(event).slice(timePrefix(event.time).length);
      byKey.set(key, tail);
    }
    return timePrefix(event.time) + tail;
  }
}

/** `{"time":"…",`: an ISO time needs no JSON escaping. */
function timePrefix(time: string): string {
  return `{"time":"${time}",`;
}

/**
 * The JSON line of an audit event, without the newline: exactly `JSON.stringify(event)`, faster for
 * the events the guards build.
 */
export function auditLine(event: AuditEvent): string {
  return event instanceof AuditRecord ? AuditRecord.lineOf(event) : JSON.stringify(event);
}
