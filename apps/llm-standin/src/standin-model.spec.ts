import { describe, expect, it } from 'vitest';
import { complete, countPromptTokens, embed, tokenize } from './standin-model.js';

describe('stand-in model', () => {
  it.each([
    ['Hello, world!', ['Hello', ',', 'world', '!']],
    ['  spaced   out  ', ['spaced', 'out']],
    ['', []],
    ['naïve café 42', ['naïve', 'café', '42']],
  ])('tokenize(%j)', (text, tokens) => {
    expect(tokenize(text)).toEqual(tokens);
  });

  it('counts prompt tokens over string and text-part contents', () => {
    expect(
      countPromptTokens([
        { content: 'one two' },
        { content: [{ type: 'text', text: 'three' }, { type: 'image_url' }] },
      ]),
    ).toBe(3);
  });

  it('is deterministic, prompt-dependent, and its usage matches its tokenizer', () => {
    const a = complete('standin-chat', [{ role: 'user', content: 'hi' }]);
    const b = complete('standin-chat', [{ role: 'user', content: 'hi' }]);
    const c = complete('standin-chat', [{ role: 'user', content: 'hello' }]);
    expect(a).toEqual(b);
    expect(a.tokens).not.toEqual(c.tokens);
    expect(a.tokens.length).toBeGreaterThanOrEqual(8);
    expect(a.tokens.length).toBeLessThanOrEqual(24);
    expect(tokenize(a.tokens.join(' '))).toHaveLength(a.tokens.length);
    expect(a.finishReason).toBe('stop');
  });

  it('honours max tokens exactly, with finish_reason length', () => {
    const r = complete('standin-chat', [{ role: 'user', content: 'hi' }], 50);
    expect(r.tokens).toHaveLength(50);
    expect(r.finishReason).toBe('length');
  });

  it('embeds to a deterministic unit vector', () => {
    const v = embed('hello', 16);
    expect(v).toHaveLength(16);
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    expect(Array.from(embed('hello', 16))).toEqual(Array.from(v));
    expect(Array.from(embed('hellp', 16))).not.toEqual(Array.from(v));
  });
});
