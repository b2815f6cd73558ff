import { describe, expect, it } from 'vitest';
import { RelayHttpError } from './openai-error.js';
import { checkRelayRequest } from './relay-request.js';

const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'm',
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

describe('checkRelayRequest', () => {
  it('reads model and the stream flags; unknown fields are the upstream to judge', () => {
    expect(checkRelayRequest('chat', chat({ future_field: { x: 1 }, top_p: 0.5 }))).toEqual({
      model: 'm',
      stream: false,
      wantsUsage: false,
    });
    expect(
      checkRelayRequest('chat', chat({ stream: true, stream_options: { include_usage: true } })),
    ).toEqual({ model: 'm', stream: true, wantsUsage: true });
    // Embeddings never stream.
    expect(checkRelayRequest('embeddings', { model: 'e', input: 'x', stream: true }).stream).toBe(false);
    expect(checkRelayRequest('responses', { model: 'r', previous_response_id: 'resp_1' }).model).toBe('r');
  });

  it.each([
    ['not an object', 'chat', [], 'body'],
    ['no model', 'chat', { messages: [{}] }, 'model'],
    ['an empty model', 'chat', chat({ model: '' }), 'model'],
    ['stream not a boolean', 'chat', chat({ stream: 'yes' }), 'stream'],
    ['stream_options not an object', 'chat', chat({ stream_options: [] }), 'stream_options'],
    [
      'include_usage not a boolean',
      'chat',
      chat({ stream_options: { include_usage: 1 } }),
      'stream_options.include_usage',
    ],
    ['max_tokens as a string', 'chat', chat({ max_tokens: '10' }), 'max_tokens'],
    [
      'max_completion_tokens a fraction',
      'chat',
      chat({ max_completion_tokens: 1.5 }),
      'max_completion_tokens',
    ],
    [
      'max_output_tokens of 0',
      'responses',
      { model: 'r', input: 'x', max_output_tokens: 0 },
      'max_output_tokens',
    ],
    ['n of 0', 'chat', chat({ n: 0 }), 'n'],
    ['no messages', 'chat', { model: 'm' }, 'messages'],
    ['empty messages', 'chat', chat({ messages: [] }), 'messages'],
    ['too many messages', 'chat', chat({ messages: Array(10_001).fill({}) }), 'messages'],
    ['no input', 'embeddings', { model: 'e' }, 'input'],
    ['input a number', 'responses', { model: 'r', input: 3 }, 'input'],
  ] as const)('refuses %s (param %s)', (_name, endpoint, body, param) => {
    try {
      checkRelayRequest(endpoint, body);
      expect.unreachable('refused');
    } catch (err) {
      expect(err).toBeInstanceOf(RelayHttpError);
      const e = err as RelayHttpError;
      expect(e.status).toBe(400);
      expect(e.body.error).toMatchObject({
        code: 'ERR_LLM_INVALID_REQUEST',
        param,
        type: 'invalid_request_error',
      });
    }
  });
});
