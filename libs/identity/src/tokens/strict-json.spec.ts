import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, parseStrictJson, StrictJsonError } from './strict-json.js';
import { seededRandom } from '../../test/seeded.js';

function failure(text: string): string | undefined {
  try {
    parseStrictJson(text);
    return undefined;
  } catch (err) {
    return err instanceof StrictJsonError ? err.kind : 'other';
  }
}

describe('parseStrictJson', () => {
  it.each([
    ['{}', {}],
    ['{"a":1,"b":[true,false,null,"x",-0.5e+3]}', { a: 1, b: [true, false, null, 'x', -500] }],
    [' { "kid" : "hs256-key",\n\t"alg" : "HS256" } ', { kid: 'hs256-key', alg: 'HS256' }],
    ['{"a":{"a":{"a":1}}}', { a: { a: { a: 1 } } }],
    ['{"s":"\\u00e9\\n\\"\\\\"}', { s: 'é\n"\\' }],
    ['[{"a":1},{"a":2}]', [{ a: 1 }, { a: 2 }]],
    ['"just a string"', 'just a string'],
    ['{"__proto__":{"admin":true}}', JSON.parse('{"__proto__":{"admin":true}}') as unknown],
    // Colons, braces and escaped quotes inside strings are not structure.
    ['{"a:b":"c:d","e":"\\":{"}', JSON.parse('{"a:b":"c:d","e":"\\":{"}') as unknown],
    ['{"q":"\\\\"}', JSON.parse('{"q":"\\\\"}') as unknown],
    ['{"a":"x\\\\\\":","b":1}', JSON.parse('{"a":"x\\\\\\":","b":1}') as unknown],
  ])('accepts %s like JSON.parse', (text, expected) => {
    expect(parseStrictJson(text)).toEqual(expected);
  });

  it('keeps __proto__ as an own member, never as the prototype', () => {
    const value = parseStrictJson('{"__proto__":{"admin":true}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect((value as { admin?: unknown }).admin).toBeUndefined();
  });

  it.each([
    ['{"sub":"alice","sub":"admin"}'],
    ['{"sub":"alice","s\\u0075b":"admin"}'],
    ['{"\\u0073ub":"alice","sub":"admin"}'],
    ['{"a":{"x":1,"x":2}}'],
    ['[{"x":1,"x":1}]'],
    ['{"alg":"RS256","kid":"k","alg":"none"}'],
    ['{"__proto__":1,"__proto__":2}'],
    ['{"a:":1,"a:":2}'],
    ['{"x":"::::","y":1,"y":2}'],
    ['{"a":[{"b":1},{"c":{"d":1,"d":1}}]}'],
  ])('refuses duplicate members in %s', (text) => {
    expect(failure(text)).toBe('duplicate');
  });

  it.each([
    [''],
    ['{'],
    ['{"a":1,}'],
    ['{"a":01}'],
    ['{"a":1.}'],
    ['{"a":.5}'],
    ['{"a":+1}'],
    ['{"a":1e}'],
    ["{'a':1}"],
    ['{"a":"\u0001"}'],
    ['{"a":"\\x41"}'],
    ['{"a":"\\u12G4"}'],
    ['{"a":tru}'],
    ['{"a":1} x'],
    ['{"a" 1}'],
    ['{a:1}'],
    ['[1,,2]'],
    ['{"a":NaN}'],
    ['{"a":"unterminated}'],
  ])('refuses invalid JSON %j', (text) => {
    expect(failure(text)).toBe('syntax');
  });

  it.each([
    ['', ''],
    ['with an escape', '"\\n",'],
  ])('bounds the nesting depth %s', (_, first) => {
    const nested = (depth: number): string => `[${first}${'['.repeat(depth - 1)}${']'.repeat(depth)}`;
    expect(failure(nested(MAX_JSON_DEPTH))).toBeUndefined();
    expect(failure(nested(MAX_JSON_DEPTH + 1))).toBe('depth');
    expect(failure(`[${first}${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}]`)).toBe('depth');
    expect(failure(`[${first}${'['.repeat(200_000)}${']'.repeat(200_000)}]`)).toBe('depth');
  });

  it('never quotes its input in the error', () => {
    try {
      parseStrictJson('{"secret-token-value":1,"secret-token-value":2}');
    } catch (err) {
      expect(String(err)).not.toContain('secret');
    }
    expect.assertions(1);
  });

  // With backslashes (escapes: the scanning path) and without any (the counting path).
  it.each([
    ['with escapes', ['a', 'b', ':', '"', '\\', '{', '}', '[', ']', ',', 'é', '\u2028', ' ']],
    ['without a backslash', ['a', 'b', ':', ':', '{', '}', '[', ']', ',', 'é', '\u2028', ' ']],
  ])('agrees with JSON.parse on generated documents %s, and finds every repeated name', (_, alphabet) => {
    // A seeded generator (the same cases on every run): nested objects and arrays whose names and
    // strings hold the characters that matter to the scan (quotes, backslashes, colons, braces),
    // written with JSON.stringify, then written again with one member repeated at a random place.
    const rand = seededRandom(0x5eed);
    const text = (): string =>
      Array.from({ length: rand(4) }, () => alphabet[rand(alphabet.length)]).join('');
    const value = (depth: number): unknown => {
      const kind = depth > 4 ? rand(3) : rand(5);
      if (kind === 0) return text();
      if (kind === 1) return rand(1000) - 500;
      if (kind === 2) return [true, false, null][rand(3)];
      if (kind === 3) return Array.from({ length: rand(4) }, () => value(depth + 1));
      const out: Record<string, unknown> = {};
      for (let i = rand(5); i > 0; i--) out[`${text()}${i}`] = value(depth + 1);
      return out;
    };
    /** The text with one member of one object written twice (none when the value has no member). */
    const withRepeat = (json: string, doc: unknown): string | undefined => {
      const objects: Record<string, unknown>[] = [];
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (typeof v === 'object' && v !== null) {
          if (Object.keys(v).length > 0) objects.push(v as Record<string, unknown>);
          Object.values(v).forEach(walk);
        }
      };
      walk(doc);
      const target = objects[rand(Math.max(1, objects.length))];
      if (target === undefined) return undefined;
      const name = Object.keys(target)[0] ?? '';
      const copy = { ...target };
      const member = `${JSON.stringify(name)}:${JSON.stringify(copy[name])}`;
      // Rewrite the target object's own text with the member first and again at the end.
      const own = JSON.stringify(target);
      const repeated = `{${member},${own.slice(1, -1)}}`;
      return json.replace(own, repeated);
    };
    let repeats = 0;
    for (let i = 0; i < 3000; i++) {
      const doc = { root: value(0) };
      const json = JSON.stringify(doc);
      if (!alphabet.includes('\\')) expect(json).not.toContain('\\');
      expect(parseStrictJson(json)).toEqual(JSON.parse(json));
      const twice = withRepeat(json, doc);
      if (twice !== undefined && twice !== json) {
        repeats++;
        expect(failure(twice)).toBe('duplicate');
      }
    }
    expect(repeats).toBeGreaterThan(1000);
  });
});
