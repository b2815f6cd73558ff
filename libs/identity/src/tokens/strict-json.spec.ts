import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, parseStrictJson, StrictJsonError } from './strict-json.js';

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

  it('bounds the nesting depth', () => {
    expect(failure('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH))).toBeUndefined();
    expect(failure('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1))).toBe('depth');
    expect(failure('{"a":'.repeat(5000) + '1' + '}'.repeat(5000))).toBe('depth');
  });

  it('never quotes its input in the error', () => {
    try {
      parseStrictJson('{"secret-token-value":1,"secret-token-value":2}');
    } catch (err) {
      expect(String(err)).not.toContain('secret');
    }
    expect.assertions(1);
  });
});
