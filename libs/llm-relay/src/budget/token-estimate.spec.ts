import { describe, expect, it } from 'vitest';
import { ATTACHMENT_TOKENS, estimateTokens, maxOutputTokens } from './token-estimate.js';

describe('estimateTokens', () => {
  it.each<[string, Record<string, unknown>, number, number]>([
    // "role" + "user" + "content" + "hello" = 20 bytes = 5 tokens; plus max_tokens.
    [
      'chat, max_tokens',
      { model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 50 },
      9,
      55,
    ],
    ['chat, the default when no maximum', { messages: [{ role: 'user', content: 'hello' }] }, 9, 14],
    // 'é' is 2 bytes in UTF-8: 8 of them are 16 bytes; plus 4 + 4 + 7 for the keys and role.
    ['UTF-8 bytes, not characters', { messages: [{ role: 'user', content: 'éééééééé' }] }, 0, 8],
    [
      'responses: input string and instructions',
      { input: 'abcd', instructions: 'efgh', max_output_tokens: 7 },
      99,
      9,
    ],
    ['embeddings: token ids count one each', { input: [[1, 2, 3], [4]] }, 0, 4],
    ['embeddings: strings', { input: ['abcd', 'efgh'] }, 0, 2],
    ['legacy completions: prompt', { prompt: 'abcdefgh', max_tokens: 1 }, 9, 3],
    [
      'max_completion_tokens wins when larger',
      { input: '', max_tokens: 5, max_completion_tokens: 20 },
      9,
      20,
    ],
    ['n choices multiply the output', { input: '', max_tokens: 10, n: 3 }, 9, 30],
    [
      'an image counts as one attachment',
      { messages: [{ image_url: { url: `data:${'A'.repeat(100_000)}` } }] },
      0,
      ATTACHMENT_TOKENS,
    ],
    ['fields the model does not read are ignored', { model: 'x'.repeat(400), user: 'y'.repeat(400) }, 0, 0],
    ['a negative or non-numeric max is ignored', { max_tokens: -5, max_output_tokens: '9' }, 11, 11],
  ])('%s', (_name, body, defaultMax, expected) => {
    expect(estimateTokens(body, defaultMax)).toBe(expected);
  });

  it('walks a deeply nested body without overflowing the stack', () => {
    let deep: unknown = 'abcd';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(estimateTokens({ input: deep }, 0)).toBe(1);
  });
});

describe('maxOutputTokens', () => {
  it.each<[Record<string, unknown>, number, number]>([
    [{}, 256, 256],
    [{ max_tokens: 2.5 }, 256, 3],
    [{ max_tokens: 0 }, 256, 0],
    [{ n: 1_000_000, max_tokens: 1 }, 0, 128],
    [{ n: 0, max_tokens: 4 }, 0, 4],
  ])('%j with default %d is %d', (body, defaultMax, expected) => {
    expect(maxOutputTokens(body, defaultMax)).toBe(expected);
  });
});
