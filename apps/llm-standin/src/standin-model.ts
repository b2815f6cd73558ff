import { createHash } from 'node:crypto';

/**
 * The stand-in "model": deterministic text and vectors derived from a hash of the input, and one
 * tokenizer used for both the output and the usage counts, so `usage` is always exact.
 */

/** Words the stand-in speaks; one word is one token. */
const WORDS = [
  'shield',
  'model',
  'token',
  'secure',
  'stream',
  'answer',
  'prompt',
  'vector',
  'cipher',
  'trust',
  'verify',
  'signal',
  'packet',
  'kernel',
  'matrix',
  'tensor',
  'gradient',
  'layer',
  'weight',
  'bias',
  'entropy',
  'nonce',
  'handshake',
  'certificate',
  'issuer',
  'subject',
  'audience',
  'scope',
  'claim',
  'key',
  'socket',
  'buffer',
  'latency',
  'throughput',
  'pool',
  'session',
  'policy',
  'guard',
  'route',
  'origin',
  'upstream',
  'proxy',
  'chunk',
  'batch',
  'epoch',
  'sample',
  'output',
  'input',
  'embedding',
  'inference',
  'quiet',
  'bright',
  'steady',
  'rapid',
  'gentle',
  'careful',
  'honest',
  'simple',
  'exact',
  'bounded',
  'river',
  'mountain',
  'harbor',
  'meadow',
] as const;

/** Default completion length range when the request sets no maximum. */
const MIN_WORDS = 8;
const EXTRA_WORDS = 17;
/** Upper bound of any completion, whatever `max_tokens` asks. */
export const MAX_COMPLETION_TOKENS = 4096;
/** The model whose answers run long (for tests that cut a stream mid-way), and their length. */
export const LONG_MODEL = 'standin-long';
export const LONG_COMPLETION_TOKENS = 1000;

/** Split text into tokens: runs of letters/digits, and each other visible character. */
export function tokenize(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];
}

/** A chat message's text: a string, or the text parts of a content array. */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        typeof part === 'object' && part !== null && (part as { type?: unknown }).type === 'text'
          ? String((part as { text?: unknown }).text ?? '')
          : '',
      )
      .join(' ');
  }
  return '';
}

/** Prompt tokens of a chat request: the tokens of every message's text. */
export function countPromptTokens(messages: readonly { content?: unknown }[]): number {
  return messages.reduce((n, m) => n + tokenize(messageText(m.content)).length, 0);
}

/** Bytes derived from `seed`, as many as asked (SHA-256 in counter mode). */
function stream(seed: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < length; i++) {
    blocks.push(createHash('sha256').update(seed).update(String(i)).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** A completion: the words, and why it stopped. */
export interface StandinCompletion {
  readonly id: string;
  readonly tokens: readonly string[];
  readonly finishReason: 'stop' | 'length';
}

/**
 * The deterministic completion of a conversation: the same model and messages always give the same
 * words. With `maxTokens`, exactly that many words (`finish_reason: "length"`); else 8 to 24
 * (`standin-long`: {@link LONG_COMPLETION_TOKENS}).
 */
export function complete(
  model: string,
  messages: readonly { role?: unknown; content?: unknown }[],
  maxTokens?: number,
): StandinCompletion {
  const seed = createHash('sha256')
    .update(model)
    .update('\0')
    .update(JSON.stringify(messages.map((m) => [String(m.role ?? ''), messageText(m.content)])))
    .digest();
  const count =
    maxTokens !== undefined
      ? Math.min(maxTokens, MAX_COMPLETION_TOKENS)
      : model === LONG_MODEL
        ? LONG_COMPLETION_TOKENS
        : MIN_WORDS + ((seed[0] ?? 0) % EXTRA_WORDS);
  const bytes = stream(seed, count);
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) tokens.push(WORDS[(bytes[i] ?? 0) % WORDS.length] ?? 'shield');
  return {
    id: `chatcmpl-${seed.subarray(0, 12).toString('hex')}`,
    tokens,
    finishReason: maxTokens !== undefined ? 'length' : 'stop',
  };
}

/** A deterministic unit vector for one input (string, or token ids). */
export function embed(input: string | readonly number[], dimensions: number): Float32Array {
  const seed = createHash('sha256')
    .update(typeof input === 'string' ? `s:${input}` : `t:${input.join(',')}`)
    .digest();
  const bytes = stream(seed, dimensions * 2);
  const v = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const x = (bytes.readUInt16BE(i * 2) / 0xffff) * 2 - 1;
    v[i] = x;
    norm += x * x;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimensions; i++) v[i] = (v[i] ?? 0) * scale;
  return v;
}

/** Tokens of one embedding input. */
export function countInputTokens(input: string | readonly number[]): number {
  return typeof input === 'string' ? tokenize(input).length : input.length;
}
