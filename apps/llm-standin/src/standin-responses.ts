/**
 * The Responses API (`POST /v1/responses`) of the stand-in: the request read into the chat model's
 * messages, and the `Response` objects and stream events OpenAI sends (the shapes of the `openai`
 * SDK 6.x types `Response`, `ResponseStreamEvent`).
 */
import { RequestError } from './standin-errors.js';
import { MAX_COMPLETION_TOKENS, type StandinCompletion } from './standin-model.js';

/** One message of a Responses input, as the stand-in model reads it. */
export interface ResponsesMessage {
  readonly role: string;
  readonly content: string;
}

/** What the stand-in reads from a Responses request body. */
export interface ResponsesRequest {
  /** `instructions` first (as a `system` message), then the `input` items. */
  readonly messages: readonly ResponsesMessage[];
  readonly instructions: string | null;
  readonly maxOutputTokens: number | undefined;
  readonly stream: boolean;
}

/** Usage as the Responses API counts it. */
export interface ResponsesUsage {
  readonly input_tokens: number;
  readonly input_tokens_details: { readonly cached_tokens: number };
  readonly output_tokens: number;
  readonly output_tokens_details: { readonly reasoning_tokens: number };
  readonly total_tokens: number;
}

const MAX_INPUT_ITEMS = 2048;

function invalid(message: string, param: string): RequestError {
  return new RequestError(400, message, 'invalid_request_error', null, param);
}

/** The text of an input item's `content`: a string, or its text parts (`input_text`, `output_text`). */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part !== 'object' || part === null) continue;
    const { type, text } = part as { type?: unknown; text?: unknown };
    if ((type === 'input_text' || type === 'output_text' || type === 'text') && typeof text === 'string')
      texts.push(text);
  }
  return texts.join(' ');
}

/** Read a Responses request (validated as OpenAI does, for the fields the stand-in uses). */
export function readResponsesRequest(body: Readonly<Record<string, unknown>>): ResponsesRequest {
  const instructions = body.instructions ?? null;
  if (instructions !== null && typeof instructions !== 'string') {
    throw invalid("'instructions' must be a string", 'instructions');
  }
  const messages: ResponsesMessage[] = [];
  if (instructions !== null) messages.push({ role: 'system', content: instructions });
  const input = body.input;
  if (typeof input === 'string') {
    messages.push({ role: 'user', content: input });
  } else if (Array.isArray(input) && input.length > 0 && input.length <= MAX_INPUT_ITEMS) {
    for (const item of input) {
      if (typeof item !== 'object' || item === null) throw invalid("'input' items must be objects", 'input');
      const { role, content, type, output } = item as Record<string, unknown>;
      if (typeof role === 'string') messages.push({ role, content: contentText(content) });
      else if (type === 'function_call_output' && typeof output === 'string')
        messages.push({ role: 'tool', content: output });
      else throw invalid("'input' items must be messages", 'input');
    }
  } else {
    throw invalid(`'input' must be a string or an array of 1 to ${MAX_INPUT_ITEMS} input items`, 'input');
  }
  const maxRaw = body.max_output_tokens;
  let maxOutputTokens: number | undefined;
  if (maxRaw !== undefined && maxRaw !== null) {
    if (
      typeof maxRaw !== 'number' ||
      !Number.isInteger(maxRaw) ||
      maxRaw < 1 ||
      maxRaw > MAX_COMPLETION_TOKENS
    ) {
      throw invalid(
        `'max_output_tokens' must be an integer from 1 to ${MAX_COMPLETION_TOKENS}`,
        'max_output_tokens',
      );
    }
    maxOutputTokens = maxRaw;
  }
  return { messages, instructions, maxOutputTokens, stream: body.stream === true };
}

/** The usage of a completion, in the Responses API's names. */
export function responsesUsage(inputTokens: number, outputTokens: number): ResponsesUsage {
  return {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputTokens,
  };
}

/** The ids of a completion's response and its one message (deterministic, like the text). */
export function responseIds(completion: StandinCompletion): { response: string; message: string } {
  const hex = completion.id.slice(completion.id.indexOf('-') + 1);
  return { response: `resp_${hex}`, message: `msg_${hex}` };
}

/** The assistant message output item. */
export function messageItem(
  id: string,
  text: string,
  status: 'in_progress' | 'completed' | 'incomplete',
): Record<string, unknown> {
  return {
    id,
    type: 'message',
    status,
    role: 'assistant',
    content: status === 'in_progress' ? [] : [outputTextPart(text)],
  };
}

/** An `output_text` content part. */
export function outputTextPart(text: string): Record<string, unknown> {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

/** A `Response` object in one of its states. */
export function responseObject(args: {
  readonly id: string;
  readonly model: string;
  readonly createdAt: number;
  readonly request: ResponsesRequest;
  readonly status: 'in_progress' | 'completed' | 'incomplete';
  readonly output: readonly unknown[];
  readonly usage: ResponsesUsage | null;
}): Record<string, unknown> {
  return {
    id: args.id,
    object: 'response',
    created_at: args.createdAt,
    status: args.status,
    background: false,
    error: null,
    incomplete_details: args.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: args.request.instructions,
    max_output_tokens: args.request.maxOutputTokens ?? null,
    model: args.model,
    output: args.output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: args.usage,
    user: null,
    metadata: {},
  };
}

/** One server-sent event of a Responses stream (`event:` names the type, as OpenAI sends it). */
export function responsesEvent(
  type: string,
  sequenceNumber: number,
  fields: Record<string, unknown>,
): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequenceNumber, ...fields })}\n\n`;
}
