import type { ShieldError, ShieldErrorCode } from '@inference-shield/core/internal';
import type { AuditDecision, AuditEvent } from './audit.interface.js';
import type { AuthMethod } from './policy.interface.js';
import type { ShieldPrincipal } from './principal.interface.js';

/**
 * The serialised tails of one principal's events. Plain allows (the hot path) by route: the first
 * inline (most principals only ever see one route), others in `allows`. Every other event in
 * `others`, by decision, code and route written as a JSON array: a key no two events share
 * unless all three are equal, whatever characters a route or a code holds.
 */
interface Tails {
  first?: { readonly route: string; readonly tail: string };
  allows?: Map<string, string>;
  others?: Map<string, string>;
}

// ISO time of the current millisecond: under load many decisions share one. The `Date` is
// formatted once per second; each new millisecond only appends three digits to that prefix.
let isoMs = -1;
let isoText = '';
let isoSecond = Number.NaN;
let isoPrefix = '';

/** The audit clock: `new Date().toISOString()`, cheaper when many decisions share a millisecond. */
export function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    const second = Math.floor(now / 1000);
    if (second !== isoSecond) {
      isoSecond = second;
      // "2026-11-26T06:02:33.000Z" without "000Z" (any year length: toISOString's own format).
      isoPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    }
    const ms = now - second * 1000;
    isoText = `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
    isoMs = now;
  }
  return isoText;
}

/**
 * Builds the audit event of a decision: who and where, never the credential. Every event has the
 * same shape (absent facts are `undefined`, which JSON leaves out), so the hot path stays
 * monomorphic. Both doors (the guard and passport) record through this.
 */
export function eventOf(
  decision: AuditDecision,
  route: string,
  principal?: ShieldPrincipal,
  error?: ShieldError,
): AuditEvent {
  return new AuditRecord(isoNow(), decision, route, principal, error?.code);
}

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

  /** The principal the event was made from (for {@link AuditLines}; no sink sees it). */
  static principalOf(event: AuditRecord): ShieldPrincipal | undefined {
    return event.#principal;
  }
}

/**
 * The JSON lines of audit events, for a sink that writes them: `of(event)` is exactly
 * `JSON.stringify(event)` with the schema version in front (`{"v":1,…`), the text after `time`
 * serialised once per principal and per (decision, route, code), since a client reusing its
 * token gets the same text on every request but for the time. Each built-in sink owns one. Entries go with their principal (principals live
 * as long as their token's cache entry); per principal there is at most one entry per route and
 * refusal code. Allowed requests, the hot path, are keyed by the route string itself (the
 * policy's, the same string on every request, its hash computed once); other events apart, by
 * decision, code and route (see {@link Tails}).
 */
export class AuditLines {
  private readonly tails = new WeakMap<ShieldPrincipal, Tails>();

  /** The JSON line of an event, without the newline: `{"v":1,` then the event's own fields. */
  of(event: AuditEvent): string {
    if (!(event instanceof AuditRecord)) return versioned(JSON.stringify(event));
    const principal = AuditRecord.principalOf(event);
    if (principal === undefined) return versioned(JSON.stringify(event));
    let mine = this.tails.get(principal);
    let tail: string | undefined;
    if (event.decision === 'allow' && event.code === undefined) {
      const route = event.route;
      const first = mine?.first;
      // The policy's route string, the same object on every request: compared by reference first.
      tail = first !== undefined && first.route === route ? first.tail : mine?.allows?.get(route);
      if (tail === undefined) {
        tail = tailOf(event);
        if (mine === undefined) this.tails.set(principal, { first: { route, tail } });
        else if (mine.first === undefined) mine.first = { route, tail };
        else (mine.allows ??= new Map()).set(route, tail);
      }
    } else {
      const key = JSON.stringify([event.decision, event.code ?? null, event.route]);
      tail = mine?.others?.get(key);
      if (tail === undefined) {
        tail = tailOf(event);
        if (mine === undefined) this.tails.set(principal, (mine = {}));
        (mine.others ??= new Map()).set(key, tail);
      }
    }
    return `${LINE_PREFIX}"time":"${event.time}",${tail}`;
  }
}

/**
 * `JSON.stringify(event)` after `{"time":"…",`, written field by field: the generic serialiser
 * walks a class instance's properties and costs several times more, once per new principal (every
 * new token). Same fields, same order (the order of {@link AuditRecord}'s fields), `undefined`
 * left out, each value escaped by `JSON.stringify` itself; a spec compares the two.
 */
function tailOf(event: AuditRecord): string {
  let tail = `"decision":${quoted(event.decision)},"route":${quoted(event.route)}`;
  if (event.method !== undefined) tail += `,"method":${quoted(event.method)}`;
  if (event.subject !== undefined) tail += `,"subject":${quoted(event.subject)}`;
  if (event.spiffeId !== undefined) tail += `,"spiffeId":${quoted(event.spiffeId)}`;
  if (event.issuer !== undefined) tail += `,"issuer":${quoted(event.issuer)}`;
  if (event.scopes !== undefined) {
    let list = '';
    for (const scope of event.scopes) list += `${list === '' ? '' : ','}${quoted(scope)}`;
    tail += `,"scopes":[${list}]`;
  }
  if (event.code !== undefined) tail += `,"code":${quoted(event.code)}`;
  return `${tail}}`;
}

/** What JSON.stringify escapes in a string: `"`, `\`, control characters, any surrogate (a lone one). */
// eslint-disable-next-line no-control-regex -- the control characters are what JSON escapes
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `JSON.stringify(text)`: the same text, without the serialiser's entry cost when nothing is escaped. */
function quoted(text: string): string {
  return ESCAPED.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/**
 * The version of the audit line schema (docs/audit-events.md): every line a built-in sink writes
 * starts with `{"v":1,`. A field added is not a new version; a field renamed, retyped or removed is.
 */
export const AUDIT_SCHEMA_VERSION = 1;
const LINE_PREFIX = `{"v":${AUDIT_SCHEMA_VERSION},`;

/** `{"v":1,` in front of a serialised event object. */
function versioned(json: string): string {
  return json === '{}' ? `{"v":${AUDIT_SCHEMA_VERSION}}` : LINE_PREFIX + json.slice(1);
}
