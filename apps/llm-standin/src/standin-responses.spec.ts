import { describe, expect, it } from 'vitest';
import { readResponsesRequest, responseIds, responsesEvent, responsesUsage } from './standin-responses.js';

describe('readResponsesRequest', () => {
  it.each<[string, Record<string, unknown>, { role: string; content: string }[]]>([
    ['a string input', { input: 'hi' }, [{ role: 'user', content: 'hi' }]],
    [
      'instructions first',
      { instructions: 'be brief', input: 'hi' },
      [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
      ],
    ],
    [
      'message items with text parts (images skipped)',
      {
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'a' },
              { type: 'input_image', image_url: 'data:x' },
              { type: 'input_text', text: 'b' },
            ],
          },
          { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'c' }] },
        ],
      },
      [
        { role: 'user', content: 'a b' },
        { role: 'assistant', content: 'c' },
      ],
    ],
    [
      'a function call output',
      { input: [{ type: 'function_call_output', call_id: 'x', output: '42' }] },
      [{ role: 'tool', content: '42' }],
    ],
  ])('reads %s', (_name, body, messages) => {
    expect(readResponsesRequest(body).messages).toEqual(messages);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['no input', {}, 'input'],
    ['an empty array', { input: [] }, 'input'],
    ['a number', { input: 3 }, 'input'],
    ['an item that is no message', { input: [{ type: 'reasoning' }] }, 'input'],
    ['instructions not a string', { input: 'x', instructions: 1 }, 'instructions'],
    ['max_output_tokens 0', { input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
    ['max_output_tokens too large', { input: 'x', max_output_tokens: 5000 }, 'max_output_tokens'],
    ['max_output_tokens not an integer', { input: 'x', max_output_tokens: 1.5 }, 'max_output_tokens'],
  ])('refuses %s (400, param %s)', (_name, body, param) => {
    expect(() => readResponsesRequest(body)).toThrow(expect.objectContaining({ status: 400, param }));
  });

  it('reads stream and max_output_tokens', () => {
    expect(readResponsesRequest({ input: 'x', stream: true, max_output_tokens: 16 })).toMatchObject({
      stream: true,
      maxOutputTokens: 16,
      instructions: null,
    });
  });
});

describe('Responses builders', () => {
  it('usage adds up', () => {
    expect(responsesUsage(3, 4)).toEqual({
      input_tokens: 3,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 4,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 7,
    });
  });

  it('ids follow the completion id', () => {
    expect(responseIds({ id: 'chatcmpl-abc123', tokens: [], finishReason: 'stop' })).toEqual({
      response: 'resp_abc123',
      message: 'msg_abc123',
    });
  });

  it('an event names its type twice, as OpenAI sends it', () => {
    expect(responsesEvent('response.output_text.delta', 5, { delta: 'x' })).toBe(
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":5,"delta":"x"}\n\n',
    );
  });
});
