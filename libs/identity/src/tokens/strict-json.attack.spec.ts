import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, parseStrictJson, StrictJsonError } from './strict-json.js';
import { seededRandom } from '../../test/seeded.js';

/**
 * Attacks on parseStrictJson, mostly on its counting path (texts without a backslash), judged
 * against an independent reference: a recursive-descent RFC 8259 parser written here, which
 * compares member names with a Set per object (no JS object is used to hold names, so
 * `__proto__`, integer-like names and the like cannot merge or reorder there).
 */

type Outcome = { readonly kind: 'ok'; readonly value: unknown } | { readonly kind: string };

function outcomeOf(text: string): Outcome {
  try {
    return { kind: 'ok', value: parseStrictJson(text) };
  } catch (err) {
    return { kind: err instanceof StrictJsonError ? err.kind : `other ${String(err)}` };
  }
}

class RefSyntax extends Error {}

/** What the reference finds: grammar, the deepest nesting, any repeated name at any depth. */
interface Reference {
  readonly valid: boolean;
  readonly depth: number;
  readonly duplicate: boolean;
  readonly value?: unknown;
}

function reference(text: string): Reference {
  let i = 0;
  let deepest = 0;
  let duplicate = false;
  const n = text.length;
  const ws = (): void => {
    while (i < n) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else break;
    }
  };
  const expect1 = (c: string): void => {
    if (text[i] !== c) throw new RefSyntax();
    i++;
  };
  const str = (): string => {
    expect1('"');
    let out = '';
    for (;;) {
      if (i >= n) throw new RefSyntax();
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return out;
      }
      if (c < 0x20) throw new RefSyntax();
      if (c === 0x5c) {
        const e = text[i + 1];
        i += 2;
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (e === 'u') {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new RefSyntax();
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
        } else if (e !== undefined && Object.hasOwn(simple, e)) out += simple[e];
        else throw new RefSyntax();
      } else {
        out += text[i];
        i++;
      }
    }
  };
  const num = (): number => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (m === null) throw new RefSyntax();
    i += m[0].length;
    return Number(m[0]);
  };
  const value = (depth: number): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      deepest = Math.max(deepest, depth + 1);
      const names = new Set<string>();
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        const name = str();
        if (names.has(name)) duplicate = true;
        names.add(name);
        ws();
        expect1(':');
        const v = value(depth + 1);
        Object.defineProperty(obj, name, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') i++;
        else {
          expect1('}');
          return obj;
        }
      }
    }
    if (c === '[') {
      i++;
      deepest = Math.max(deepest, depth + 1);
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') i++;
        else {
          expect1(']');
          return arr;
        }
      }
    }
    if (c === '"') return str();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return num();
  };
  try {
    const v = value(0);
    ws();
    if (i !== n) throw new RefSyntax();
    return { valid: true, depth: deepest, duplicate, value: v };
  } catch (err) {
    if (!(err instanceof RefSyntax)) throw err;
    return { valid: false, depth: deepest, duplicate };
  }
}

/**
 * What a strict reader must answer for a text without a backslash: 'syntax' for invalid JSON,
 * else 'depth' or 'duplicate' when either applies (a text both too deep and repeating a name may
 * be refused as either: the counting path never walks a value JSON.parse dropped for a later
 * member of the same name, so a deep value hidden there is refused as the repeat it is), else the
 * value.
 */
function expectedOf(text: string): { readonly kinds: readonly string[]; readonly value?: unknown } {
  const ref = reference(text);
  if (!ref.valid) return { kinds: ['syntax'] };
  const deep = ref.depth > MAX_JSON_DEPTH;
  if (deep && ref.duplicate) return { kinds: ['depth', 'duplicate'] };
  if (deep) return { kinds: ['depth'] };
  if (ref.duplicate) return { kinds: ['duplicate'] };
  return { kinds: ['ok'], value: ref.value };
}

// Names chosen to collide in every way a JS object or a counting scheme could be fooled by.
const NAMES = [
  'a',
  'b',
  'sub',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  '0',
  '00',
  '1',
  '01',
  '1.0',
  '-0',
  '4294967295',
  '4294967294',
  '9007199254740993',
  'length',
  ':',
  '::',
  'a:',
  ':a',
  ' ',
  '',
  '{',
  '}',
  '[',
  ']',
  ',',
  '"x',
  'é',
  'e\u0301',
  '\u2028',
  '\u2029',
  '\ud800',
  '\udc00',
  '\ud83d\ude00',
  '\u007f',
  '\ufeff',
  '\u0000',
  '\n',
];
const STRING_PARTS = ['', ':', '::', 'a', '{"a":1}', '[', '}', ',', ' ', '\u2028', '\ud800', 'é', '"'];

/** JSON string literal of `s`, escaping only when `escapes` (else quotes and controls are replaced). */
function lit(s: string, escapes: boolean): string {
  if (escapes) return JSON.stringify(s);
  // Without escapes a string cannot hold `"`, `\` or controls: substitute them.
  // eslint-disable-next-line no-control-regex -- controls are what JSON cannot hold raw
  return `"${s.replace(/["\\\u0000-\u001f]/g, '_')}"`;
}

function generator(seed: number, escapes: boolean) {
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)] as T;
  const space = (): string => (rand(4) === 0 ? pick([' ', '\n', '\t', '\r', '  ', ' \r\n']) : '');
  const scalar = (): string => {
    switch (rand(7)) {
      case 0:
        return pick(['0', '-0', '1', '1.5e3', '-12.25E-2', '1e400', '123456789012345678901234567890']);
      case 1:
        return pick(['true', 'false', 'null']);
      default:
        return lit(Array.from({ length: rand(4) }, () => pick(STRING_PARTS)).join(''), escapes);
    }
  };
  const name = (): string => {
    const base = pick(NAMES);
    return lit(rand(5) === 0 ? base + pick(NAMES) : base, escapes);
  };
  // A budget of containers per document keeps texts small (a few hundred bytes) however deep.
  let budget = 0;
  const doc = (depth: number, maxDepth: number): string => {
    if (depth === 0) budget = 60;
    if (depth >= maxDepth || budget <= 0 || (rand(3) === 0 && maxDepth <= 8)) return scalar();
    budget--;
    // Deep documents: mostly one child per level, so the nesting really reaches maxDepth.
    const count = maxDepth > 8 ? 1 + rand(2) : rand(5);
    const items: string[] = [];
    // Deep documents are mostly arrays: repeated names on the way down would hide the depth.
    if (rand(maxDepth > 8 ? 4 : 2) !== 1) {
      for (let k = 0; k < count; k++) items.push(`${space()}${doc(depth + 1, maxDepth)}${space()}`);
      return `[${items.join(',')}]`;
    }
    const used: string[] = [];
    for (let k = 0; k < count; k++) {
      // One time in four, a name already written in this object (a repeat at this depth).
      const key = used.length > 0 && maxDepth <= 8 && rand(4) === 0 ? pick(used) : name();
      used.push(key);
      items.push(`${space()}${key}${space()}:${space()}${doc(depth + 1, maxDepth)}${space()}`);
    }
    return `{${items.join(',')}}`;
  };
  // Small textual damage: what a parser must refuse as syntax (or still accept, when harmless).
  const mutate = (text: string): string => {
    const at = rand(text.length + 1);
    switch (rand(4)) {
      case 0:
        return text.slice(0, at) + text.slice(at + 1);
      case 1:
        return (
          text.slice(0, at) + pick([':', ',', '"', '{', '}', '[', ']', ' ', '0', '\u2028']) + text.slice(at)
        );
      case 2: {
        const end = at + rand(12);
        return text.slice(0, end) + text.slice(at, end) + text.slice(end);
      }
      default:
        return text.slice(0, at);
    }
  };
  return { rand, doc, mutate };
}

describe('parseStrictJson under attack: texts without a backslash (the counting path)', () => {
  it.each([
    ['{"sub":"alice","sub":"admin"}', 'duplicate'],
    ['{"__proto__":1,"__proto__":2}', 'duplicate'],
    ['{"__proto__":{"a":1},"__proto__":{"a":1}}', 'duplicate'],
    ['{"a":{"x":1},"a":{"x":1,"y:":2}}', 'duplicate'],
    // The kept value carries more colons than the lost one: still one separator short.
    ['{"a":1,"a":"::"}', 'duplicate'],
    ['{"a":"::::","a":1}', 'duplicate'],
    ['{"a:":1,"a:":2}', 'duplicate'],
    ['{"":1,"":2}', 'duplicate'],
    ['{"0":1,"0":2}', 'duplicate'],
    ['{"4294967295":1,"4294967295":2}', 'duplicate'],
    ['{"\ud800":1,"\ud800":2}', 'duplicate'],
    ['{"\u2028":1,"\u2028":2}', 'duplicate'],
    ['[{"a":1},{"b":{"c":[{"d":1,"d":1}]}}]', 'duplicate'],
    // A repeat hidden behind a compensating colon elsewhere needs a colon that is no separator.
    ['{"a":1,"a":2,"b"::3}', 'syntax'],
    ['{"a":1,"a":2}:', 'syntax'],
    [':{"a":1,"a":2}', 'syntax'],
    ['{"a":1 "b":2}', 'syntax'],
    ['{"a":1,}', 'syntax'],
    ['[1,]', 'syntax'],
    ['\ufeff{}', 'syntax'],
    ['{"a":01}', 'syntax'],
    ['{"a":"\u0001"}', 'syntax'],
    ["{'a':1}", 'syntax'],
    ['{a:1}', 'syntax'],
    ['', 'syntax'],
    [' ', 'syntax'],
    ['{"a":1}{"a":2}', 'syntax'],
    ['{"a":1}\u00a0', 'syntax'],
    ['{"a":NaN}', 'syntax'],
  ])('refuses %j as %s', (text, kind) => {
    expect(text).not.toContain('\\');
    expect(outcomeOf(text)).toEqual({ kind });
    expect(expectedOf(text).kinds).toEqual([kind]);
  });

  it.each([
    ['{"1":1,"01":2,"1.0":3,"-0":4,"0":5}'],
    ['{"__proto__":1,"constructor":2,"toString":3,"hasOwnProperty":4}'],
    ['{"a":{"a":{"a":1}},"b":[{"a":1},{"a":1}]}'],
    ['{"é":1,"e\u0301":2}'],
    ['{"\ud83d\ude00":1,"\ud83d":2,"\ude00":3}'],
    ['{"a:b":"c:d","a":"b:c:d"}'],
    ['{"":0,"::":"::","{":"}","[":"]"}'],
    ['"::::"'],
    ['[":",":",":"]'],
    ['{"length":0,"0":1}'],
  ])('accepts %j exactly as JSON.parse', (text) => {
    expect(outcomeOf(text)).toEqual({ kind: 'ok', value: JSON.parse(text) as unknown });
    expect(expectedOf(text).kinds).toEqual(['ok']);
  });

  it('keeps a lone __proto__ as an own member, never as the prototype', () => {
    const value = parseStrictJson('{"a":{"__proto__":{"polluted":true}}}') as { a: object };
    expect(Object.getPrototypeOf(value.a)).toBe(Object.prototype);
    expect(Object.keys(value.a)).toEqual(['__proto__']);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('bounds the nesting at exactly MAX_JSON_DEPTH, arrays and objects mixed', () => {
    const mixed = (depth: number): string => {
      let open = '';
      let close = '';
      for (let d = 0; d < depth; d++) {
        open += d % 2 === 0 ? '{"k:":' : '[';
        close = (d % 2 === 0 ? '}' : ']') + close;
      }
      return `${open}":"${close}`;
    };
    expect(outcomeOf(mixed(MAX_JSON_DEPTH)).kind).toBe('ok');
    expect(outcomeOf(mixed(MAX_JSON_DEPTH + 1))).toEqual({ kind: 'depth' });
    // Too deep and a repeat inside: refused either way, never accepted.
    const deepDup = `${'['.repeat(40)}{"a":1,"a":2}${']'.repeat(40)}`;
    expect(outcomeOf(deepDup).kind).not.toBe('ok');
    // A too-deep value JSON.parse drops for a later member of the same name is never walked: the
    // text is refused as the repeat it also is (not as 'depth'), and never accepted.
    const hidden = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)},"a":1}`;
    expect(outcomeOf(hidden)).toEqual({ kind: 'duplicate' });
  });

  it('agrees with the reference on seeded generated texts, whole and damaged', () => {
    const counts = { cases: 0, accepted: 0, duplicate: 0, depth: 0, syntax: 0 };
    for (let seed = 1; seed <= 4; seed++) {
      const { rand, doc, mutate } = generator(seed * 7919, false);
      for (let k = 0; k < 2000; k++) {
        let text = doc(0, rand(4) === 0 ? MAX_JSON_DEPTH - 1 + rand(4) : 6);
        if (rand(3) === 0) text = mutate(text);
        expect(text.includes('\\')).toBe(false);
        const actual = outcomeOf(text);
        const expected = expectedOf(text);
        if (!expected.kinds.includes(actual.kind)) {
          throw new Error(
            `disagree on ${JSON.stringify(text)}: ${actual.kind} vs ${expected.kinds.join('|')}`,
          );
        }
        if ('value' in actual) {
          // The same members in the same order (JSON.stringify keeps an own `__proto__`).
          expect(JSON.stringify(actual.value)).toBe(JSON.stringify(expected.value));
          expect(actual.value).toEqual(JSON.parse(text));
        }
        counts.cases++;
        counts[actual.kind === 'ok' ? 'accepted' : (actual.kind as 'duplicate' | 'depth' | 'syntax')]++;
      }
    }
    // Every outcome was exercised many times (the generator is not degenerate).
    expect(counts.cases).toBe(8000);
    for (const n of [counts.accepted, counts.duplicate, counts.depth, counts.syntax]) {
      expect(n, JSON.stringify(counts)).toBeGreaterThan(200);
    }
  });

  it('agrees with the reference on texts with escapes too (the scanning path)', () => {
    let cases = 0;
    for (let seed = 1; seed <= 2; seed++) {
      const { rand, doc, mutate } = generator(seed * 104_729, true);
      for (let k = 0; k < 1500; k++) {
        let text = doc(0, rand(4) === 0 ? MAX_JSON_DEPTH - 1 + rand(4) : 6);
        if (rand(3) === 0) text = mutate(text);
        const actual = outcomeOf(text);
        const ref = reference(text);
        // The scanning path bounds the nesting on the text before the grammar: a damaged, deep
        // text may be refused as 'depth' first. Only the valid texts have a single answer.
        if (ref.valid) {
          const expected = expectedOf(text);
          expect(expected.kinds, JSON.stringify(text)).toContain(actual.kind);
          if ('value' in actual) expect(JSON.stringify(actual.value)).toBe(JSON.stringify(ref.value));
        } else {
          expect(['syntax', 'depth']).toContain(actual.kind);
        }
        cases++;
      }
    }
    expect(cases).toBe(3000);
  });
});

describe('parseStrictJson on large adversarial texts (no RangeError, no crash)', () => {
  const MB = 1 << 20;
  const fill = (unit: string, size: number): string =>
    unit.repeat(Math.max(1, Math.floor(size / unit.length)));
  it.each([
    ['1 MB of [ then ]', () => `${'['.repeat(MB / 2)}${']'.repeat(MB / 2)}`, 'depth'],
    ['1 MB of unclosed [', () => '['.repeat(MB), 'syntax'],
    ['1 MB of {"a": then }', () => `${'{"a":'.repeat(MB / 5)}1${'}'.repeat(MB / 5)}`, 'depth'],
    ['1 MB of {"a": unclosed', () => '{"a":'.repeat(MB / 5), 'syntax'],
    ['1 MB of one repeated name', () => `{${fill('"a":1,', MB)}"a":1}`, 'duplicate'],
    [
      '1 MB of distinct names',
      () => `{${Array.from({ length: MB / 12 }, (_, k) => `"k${k}":0`).join(',')}}`,
      'ok',
    ],
    [
      '1 MB of integer names, descending',
      () => `{${Array.from({ length: MB / 12 }, (_, k) => `"${MB - k}":0`).join(',')}}`,
      'ok',
    ],
    ['1 MB string of colons', () => `"${':'.repeat(MB)}"`, 'ok'],
    [
      '1 MB of colon names, one repeat',
      () => `{"${':'.repeat(MB / 2)}":1,"${':'.repeat(MB / 2)}":2}`,
      'duplicate',
    ],
    ['1 MB of sibling objects, same names', () => `[${fill('{"a":":","b":1},', MB)}{}]`, 'ok'],
    ['1 MB of [[ ]] pairs side by side', () => `[${fill('[[[]]],', MB)}[]]`, 'ok'],
  ])('%s', (_, make, kind) => {
    const text = make();
    expect(text).not.toContain('\\');
    expect(outcomeOf(text).kind).toBe(kind);
  });

  it('refuses 1e6 nested arrays as too deep, with an escape in front too', () => {
    const deep = `[${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}]`;
    expect(outcomeOf(deep)).toEqual({ kind: 'depth' });
    expect(outcomeOf(`["\\n",${deep.slice(1)}`)).toEqual({ kind: 'depth' });
  });
});
