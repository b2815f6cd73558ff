/**
 * The estimate a call is reserved with before it goes upstream (replaced by the upstream's `usage`
 * afterwards): UTF-8 bytes of the prompt-bearing fields / 4, plus the output the call may produce.
 */

/** Fields of the OpenAI request bodies (chat, responses, completions, embeddings) the model reads. */
const PROMPT_FIELDS = [
  'messages',
  'input',
  'instructions',
  'prompt',
  'tools',
  'functions',
  'response_format',
  'text',
] as const;

/** Fields naming the most output a call may produce (chat's two spellings, the Responses API's). */
const OUTPUT_FIELDS = ['max_completion_tokens', 'max_tokens', 'max_output_tokens'] as const;

/**
 * Parts that are not text (images, files, audio, usually base64): their bytes say little about the
 * tokens they cost, and counting them as text would refuse every image larger than a budget. Each
 * counts as {@link ATTACHMENT_TOKENS}.
 */
const ATTACHMENT_KEYS = new Set(['image_url', 'file_data', 'input_audio', 'image_data']);
/** Tokens one attachment is estimated at (about a high-detail image tile set). */
export const ATTACHMENT_TOKENS = 1_000;
/** Largest `n` (choices) honoured; more is the upstream's to refuse. */
const MAX_CHOICES = 128;

/**
 * The token estimate of one request body (the parsed JSON), without serialising it again: the UTF-8
 * bytes of every string in the prompt-bearing fields (`messages`, `input`, `instructions`, `prompt`,
 * `tools`, …) divided by 4, rounded up; a token id array (embeddings) counts one token per id; plus
 * `max_completion_tokens` / `max_tokens` / `max_output_tokens` (the largest given, times `n` choices)
 * or `defaultMaxOutputTokens` (the model's configured default) when the body names none.
 *
 * Walks the body iteratively, so a deeply nested body cannot overflow the stack; its size is the
 * body limit's to bound.
 *
 * @example
 * estimateTokens({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 50 }, 1024); // 55
 */
export function estimateTokens(
  body: Readonly<Record<string, unknown>>,
  defaultMaxOutputTokens: number,
): number {
  let bytes = 0;
  let tokens = 0;
  const stack: unknown[] = [];
  for (const field of PROMPT_FIELDS) {
    const value = body[field];
    if (value !== undefined) stack.push(value);
  }
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      bytes += Buffer.byteLength(value, 'utf8');
    } else if (typeof value === 'number') {
      // A token id (embeddings' `input` as ids) or a numeric setting inside a tool schema.
      tokens += 1;
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
    } else if (typeof value === 'object' && value !== null) {
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        if (ATTACHMENT_KEYS.has(key)) {
          tokens += ATTACHMENT_TOKENS;
          continue;
        }
        // Keys are text the model reads too (roles' framing, tool schemas' property names).
        bytes += Buffer.byteLength(key, 'utf8');
        stack.push((value as Record<string, unknown>)[key]);
      }
    }
  }
  return Math.ceil(bytes / 4) + tokens + maxOutputTokens(body, defaultMaxOutputTokens);
}

/** The output a call may produce: the largest limit it names, times `n`; else the model's default. */
export function maxOutputTokens(
  body: Readonly<Record<string, unknown>>,
  defaultMaxOutputTokens: number,
): number {
  let max: number | undefined;
  for (const field of OUTPUT_FIELDS) {
    const value = body[field];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
      max = Math.max(max ?? 0, Math.ceil(value));
    }
  }
  const n = body['n'];
  const choices = typeof n === 'number' && Number.isInteger(n) && n > 1 ? Math.min(n, MAX_CHOICES) : 1;
  return (max ?? defaultMaxOutputTokens) * choices;
}
