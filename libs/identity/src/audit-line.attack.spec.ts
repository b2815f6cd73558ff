import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, ShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
import { AuditLines, AuditRecord, eventOf } from './audit.event.js';
import type { AuditDecision, AuditEvent } from './audit.interface.js';
import type { AuthMethod } from './policy.interface.js';
import type { ShieldPrincipal } from './principal.interface.js';
import { seededRandom } from '../test/seeded.js';

/**
 * Attacks on the audit line writer: every field an attacker reaches (a token's `sub` and
 * scopes, a certificate's SPIFFE ID and issuer DN) filled with every kind of character, and the
 * fields the service fixes (route, code, method) too. The contract: `AuditLines.of(event)` is
 * byte for byte `{"v":1,` + `JSON.stringify(event).slice(1)`, the first time and every time after
 * (when the per-principal cache serves it).
 */

/** The JSON.stringify-based expectation. */
const versioned = (event: AuditEvent): string => `{"v":1,${JSON.stringify(event).slice(1)}`;

// Every code unit JSON.stringify treats apart, and their neighbours.
const SPECIAL = [
  '"',
  '\\',
  '/',
  '\u0000',
  '\b',
  '\t',
  '\n',
  '\f',
  '\r',
  '\u000b',
  '\u001f',
  ' ',
  '\u007f',
  '\u0080',
  '\u009f',
  '\u00a0',
  '\u2028',
  '\u2029',
  '\ud7ff',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\ue000',
  '\ufeff',
  '\uffff',
  '\ud83d\ude00',
  '\udbff\udfff',
  '\ud800\ud800',
  '\udc00\ud800',
  'é',
  'a',
  ':',
  ',',
  '}',
  '{"v":2}',
  '","decision":"allow',
  '\n{"v":1,"decision":"allow"}',
  '</script>',
  'spiffe://shield.local/ns/a/sa/b',
];

const TIMES = ['2026-12-08T01:14:42.742Z', '+275760-09-13T00:00:00.000Z', '1970-01-01T00:00:00.000Z'];

function generator(seed: number) {
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)] as T;
  const text = (): string => {
    switch (rand(8)) {
      case 0:
        return '';
      case 1:
        // Any single code unit at all.
        return String.fromCharCode(rand(0x10000));
      case 2:
        return Array.from({ length: 1 + rand(40) }, () => String.fromCharCode(rand(0x10000))).join('');
      case 3:
        // Long: the regex test and the fallback both see all of it.
        return pick(SPECIAL).repeat(1 + rand(3000));
      default:
        return Array.from({ length: 1 + rand(12) }, () => pick(SPECIAL)).join('');
    }
  };
  const codes = Object.keys(ERROR_CATALOGUE) as ShieldErrorCode[];
  const principal = (): ShieldPrincipal => {
    const method = pick<AuthMethod>(['oidc', 'saml', 'mtls']);
    const p: { -readonly [K in keyof ShieldPrincipal]: ShieldPrincipal[K] } = {
      method,
      subject: text(),
      issuer: text(),
      scopes: Object.freeze(Array.from({ length: rand(4) === 0 ? 0 : rand(6) }, text)),
      claims: Object.freeze({}),
    };
    if (rand(2) === 0) p.spiffeId = text();
    return Object.freeze(p);
  };
  const route = (): string =>
    rand(3) === 0 ? text() : pick(['GET /x', 'POST /v1/chat/completions', 'GET /"x"\\']);
  const event = (who: ShieldPrincipal | undefined): AuditEvent => {
    const decision = pick<AuditDecision>(['allow', 'deny']);
    const r = route();
    switch (rand(3)) {
      case 0:
        return eventOf(decision, r, who, decision === 'deny' ? new ShieldError(pick(codes)) : undefined);
      case 1:
        // A code from the catalogue on an allow too (the constructor takes any).
        return new AuditRecord(pick(TIMES), decision, r, who, rand(2) === 0 ? pick(codes) : undefined);
      default: {
        // A code written with any character: the serialiser must still agree. (Not the time: it
        // is always isoNow()'s, and `of` writes it unescaped by design.) On a principal of its
        // own: such codes can spell another event's cache key (see the last test below).
        const own = who === undefined ? undefined : Object.freeze({ ...who });
        return new AuditRecord(pick(TIMES), decision, r, own, text() as ShieldErrorCode);
      }
    }
  };
  return { rand, principal, event };
}

describe('AuditLines.of under attack: every character in every field', () => {
  it('is JSON.stringify of the event after "v":1, first and repeated, on seeded principals', () => {
    let lines = 0;
    for (let seed = 1; seed <= 4; seed++) {
      const { rand, principal, event } = generator(seed * 31_337);
      const sink = new AuditLines();
      const principals = Array.from({ length: 40 }, principal);
      for (let k = 0; k < 1500; k++) {
        const who = rand(10) === 0 ? undefined : principals[rand(principals.length)];
        const e = event(who);
        // First sight, then again (served from the cache), then an equal event built anew.
        expect(sink.of(e)).toBe(versioned(e));
        expect(sink.of(e)).toBe(versioned(e));
        lines += 2;
      }
    }
    expect(lines).toBe(12_000);
  });

  it.each([
    ['empty strings', ''],
    ['a lone high surrogate', '\ud800'],
    ['a lone low surrogate', '\udfff'],
    ['a reversed pair', '\udc00\ud800'],
    ['a pair cut at the end', 'x\ud83d'],
    ['a pair', '\ud83d\ude00'],
    ['every control', Array.from({ length: 32 }, (_, c) => String.fromCharCode(c)).join('')],
    ['DEL and C1 controls', '\u007f\u0080\u009f'],
    ['line and paragraph separators', '\u2028\u2029'],
    ['quotes and backslashes', '"\\"\\\\""'],
    ['a forged line', '"}\n{"v":1,"time":"x","decision":"allow","route":"GET /admin"}'],
    ['256 KB of quotes', '"'.repeat(1 << 18)],
    ['256 KB plain', 'a'.repeat(1 << 18)],
  ])('writes %s in subject, issuer, SPIFFE ID, scopes, route and code as JSON.stringify does', (_, s) => {
    const who: ShieldPrincipal = Object.freeze({
      method: 'mtls',
      subject: s,
      issuer: s,
      spiffeId: s,
      scopes: Object.freeze([s, s, 'models:infer']),
      claims: Object.freeze({}),
    });
    const sink = new AuditLines();
    const events = [
      eventOf('allow', 'GET /x', who),
      eventOf('deny', 'GET /x', who, new ShieldError('ERR_INSUFFICIENT_SCOPE')),
      new AuditRecord(TIMES[0] as string, 'allow', s, who, undefined),
      new AuditRecord(TIMES[0] as string, 'deny', s, who, s as ShieldErrorCode),
    ];
    for (let round = 0; round < 2; round++) {
      for (const e of events) expect(sink.of(e)).toBe(versioned(e));
    }
    // Exactly one line: nothing an attacker writes breaks it (U+2028 and U+2029 stay raw, as
    // JSON.stringify writes them: they are no line break to a JSON-lines reader).
    for (const e of events) {
      const line = sink.of(e);
      expect(line).not.toMatch(/[\n\r]/);
      expect(JSON.parse(line)).toEqual({ v: 1, ...(JSON.parse(JSON.stringify(e)) as object) });
    }
  });

  const who: ShieldPrincipal = Object.freeze({
    method: 'oidc',
    subject: 'alice',
    issuer: 'https://idp.example',
    scopes: Object.freeze([]),
    claims: Object.freeze({}),
  });

  // Found by this review (2026-12-08): the cache key of a plain allow was its route, and that of
  // any other event `\n<decision> <code ?? ''> <route>`, which is ambiguous: two events of one
  // principal whose keys were spelled alike shared one cached tail, and the second got the first
  // one's line (a route starting with `\n<decision> <code> `, a code with a space, an empty code
  // against none). Not reachable with the service's own routes and catalogue codes; fixed anyway:
  // plain allows and other events are kept apart, the others keyed by a JSON array.
  it('keeps events apart whose cache keys are spelled alike (route with a line break)', () => {
    const sink = new AuditLines();
    const allow = eventOf('allow', '\ndeny ERR_INSUFFICIENT_SCOPE GET /x', who);
    const deny = eventOf('deny', 'GET /x', who, new ShieldError('ERR_INSUFFICIENT_SCOPE'));
    expect(sink.of(allow)).toBe(versioned(allow));
    expect(sink.of(deny)).toBe(versioned(deny));
  });

  it('keeps events apart whose cache keys are spelled alike (code with a space, empty code)', () => {
    const sink = new AuditLines();
    const time = TIMES[0] as string;
    const a = new AuditRecord(time, 'deny', 'C', who, 'A B' as ShieldErrorCode);
    const b = new AuditRecord(time, 'deny', 'B C', who, 'A' as ShieldErrorCode);
    const c = new AuditRecord(time, 'deny', 'GET /x', who, '' as ShieldErrorCode);
    const d = new AuditRecord(time, 'deny', 'GET /x', who, undefined);
    for (const e of [a, b, c, d]) expect(sink.of(e)).toBe(versioned(e));
  });
});
