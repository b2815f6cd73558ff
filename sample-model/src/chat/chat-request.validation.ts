import { ShieldError } from '@inference-shield/core';

/** What the sample forwards of an OpenAI chat request: a bounded, known subset. */
export interface ChatRequest {
  readonly model?: string;
  readonly messages: readonly { readonly role: 'system' | 'user' | 'assistant'; readonly content: string }[];
  readonly stream: boolean;
  readonly max_tokens?: number;
  readonly temperature?: number;
}

const TOP_LEVEL = new Set(['model', 'messages', 'stream', 'max_tokens', 'temperature']);
const ROLES = new Set(['system', 'user', 'assistant']);
export const MAX_MESSAGES = 64;
export const MAX_CONTENT_CHARS = 32 * 1024;

function invalid(detail: string): ShieldError {
  return new ShieldError('ERR_INVALID_INPUT', { detail });
}

/**
 * Check a chat request before anything goes upstream: known fields only, bounded counts and
 * lengths, text content only. Details name the field, never quote the prompt.
 */
export function validateChatRequest(body: unknown): ChatRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b))
    if (!TOP_LEVEL.has(key)) throw invalid(`unknown field "${key.slice(0, 40)}"`);
  const { model, messages, stream, max_tokens, temperature } = b;
  if (model !== undefined && (typeof model !== 'string' || model.length === 0 || model.length > 128)) {
    throw invalid('"model" must be a string of 1 to 128 characters');
  }
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_MESSAGES) {
    throw invalid(`"messages" must be an array of 1 to ${MAX_MESSAGES} messages`);
  }
  const out: { role: 'system' | 'user' | 'assistant'; content: string }[] = [];
  messages.forEach((m: unknown, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw invalid(`"messages[${i}]" must be an object`);
    const msg = m as Record<string, unknown>;
    for (const key of Object.keys(msg)) {
      if (key !== 'role' && key !== 'content') throw invalid(`"messages[${i}]" has an unknown field`);
    }
    if (typeof msg.role !== 'string' || !ROLES.has(msg.role)) {
      throw invalid(`"messages[${i}].role" must be system, user or assistant`);
    }
    if (typeof msg.content !== 'string' || msg.content.length > MAX_CONTENT_CHARS) {
      throw invalid(`"messages[${i}].content" must be a string of at most ${MAX_CONTENT_CHARS} characters`);
    }
    out.push({ role: msg.role as 'system' | 'user' | 'assistant', content: msg.content });
  });
  if (stream !== undefined && typeof stream !== 'boolean') throw invalid('"stream" must be a boolean');
  if (
    max_tokens !== undefined &&
    (!Number.isInteger(max_tokens) || (max_tokens as number) < 1 || (max_tokens as number) > 4096)
  ) {
    throw invalid('"max_tokens" must be an integer from 1 to 4096');
  }
  if (
    temperature !== undefined &&
    (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= 2))
  ) {
    throw invalid('"temperature" must be a number from 0 to 2');
  }
  return Object.freeze({
    ...(model !== undefined ? { model: model as string } : {}),
    messages: Object.freeze(out),
    stream: stream === true,
    ...(max_tokens !== undefined ? { max_tokens: max_tokens as number } : {}),
    ...(temperature !== undefined ? { temperature: temperature as number } : {}),
  });
}
