import type { RelayEndpoint } from './llm-relay-options.interface.js';
import { relayError, type RelayHttpError } from './openai-error.js';

/** What the relay reads of a request body; every other field passes through untouched. */
export interface RelayRequest {
  readonly model: string;
  readonly stream: boolean;
  /** The caller asked for the usage chunk (`stream_options.include_usage: true`). */
  readonly wantsUsage: boolean;
}

/** Most entries of `messages` / `input` arrays (a bound besides the body size). */
export const MAX_ITEMS = 10_000;
const MAX_OUTPUT_TOKENS = 10_000_000;
const OUTPUT_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;

function invalid(param: string, message: string): RelayHttpError {
  return relayError('ERR_LLM_INVALID_REQUEST', { param, message });
}

/**
 * Check what the relay needs and rewrites (model, stream flags, output limits, size of the lists),
 * nothing else: fields it does not know are the upstream's to judge, so new SDK fields keep
 * working. Messages name the field, never quote its value.
 */
export function checkRelayRequest(endpoint: RelayEndpoint, body: unknown): RelayRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('body', 'The request body must be a JSON object.');
  const b = body as Record<string, unknown>;
  const model = b['model'];
  if (typeof model !== 'string' || model.length === 0 || model.length > 256)
    throw invalid('model', 'you must provide a model parameter (a string of 1 to 256 characters).');
  const stream = b['stream'];
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean')
    throw invalid('stream', '"stream" must be a boolean.');
  const options = b['stream_options'];
  let wantsUsage = false;
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object' || Array.isArray(options))
      throw invalid('stream_options', '"stream_options" must be an object.');
    const include = (options as Record<string, unknown>)['include_usage'];
    if (include !== undefined && include !== null && typeof include !== 'boolean')
      throw invalid('stream_options.include_usage', '"stream_options.include_usage" must be a boolean.');
    wantsUsage = include === true;
  }
  for (const field of OUTPUT_FIELDS) {
    const v = b[field];
    if (v === undefined || v === null) continue;
    // Counted in the budget estimate: a string or a fraction would slip past it.
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_OUTPUT_TOKENS)
      throw invalid(field, `"${field}" must be an integer from 1 to ${MAX_OUTPUT_TOKENS}.`);
  }
  const n = b['n'];
  if (n !== undefined && n !== null && (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 128))
    throw invalid('n', '"n" must be an integer from 1 to 128.');
  if (endpoint === 'chat') {
    const messages = b['messages'];
    if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_ITEMS)
      throw invalid('messages', `"messages" must be an array of 1 to ${MAX_ITEMS} messages.`);
  } else {
    const input = b['input'];
    const ok =
      typeof input === 'string' ||
      (Array.isArray(input) && input.length > 0 && input.length <= MAX_ITEMS) ||
      // The Responses API may continue a conversation with no new input.
      (endpoint === 'responses' && input === undefined && b['previous_response_id'] !== undefined);
    if (!ok) throw invalid('input', `"input" must be a string or an array of 1 to ${MAX_ITEMS} items.`);
  }
  return { model, stream: stream === true && endpoint !== 'embeddings', wantsUsage };
}
