/**
 * @inference-shield/llm-standin: a stand-in hosted LLM for development and tests. DEV ONLY.
 * OpenAI-compatible (`/v1/models`, `/v1/chat/completions` with and without streaming,
 * `/v1/embeddings`) over mutual TLS with an API key, deterministic output derived from the prompt.
 */
export {
  createLlmStandin,
  STANDIN_MODELS,
  type LlmStandin,
  type LlmStandinOptions,
  type LlmStandinStats,
  type RecordedRequest,
  type StandinCancellation,
} from './llm-standin.server.js';
export {
  complete,
  countInputTokens,
  countPromptTokens,
  embed,
  MAX_COMPLETION_TOKENS,
  type StandinCompletion,
} from './standin-model.js';
