/**
 * @inference-shield/llm-standin: a stand-in hosted LLM for development and tests. DEV ONLY.
 * OpenAI-compatible (`/v1/models`, `/v1/chat/completions` and `/v1/responses` with and without
 * streaming, `/v1/embeddings`) over mutual TLS with an API key, deterministic output derived from
 * the prompt, and a 429 mode.
 */
export {
  createLlmStandin,
  STANDIN_MODELS,
  type LlmStandin,
  type LlmStandinOptions,
  type LlmStandinStats,
  type RecordedRequest,
  type StandinCancellation,
  type StandinEvents,
  type StandinRateLimit,
  type StandinStreamDone,
} from './llm-standin.server.js';
export {
  complete,
  countInputTokens,
  countPromptTokens,
  embed,
  LONG_COMPLETION_TOKENS,
  LONG_MODEL,
  MAX_COMPLETION_TOKENS,
  type StandinCompletion,
} from './standin-model.js';
export {
  StandinTokenEndpoint,
  STANDIN_TOKEN_PATH,
  type StandinTokenEndpointOptions,
  type StandinJwtIssuer,
  type StandinTokenStats,
  type StandinTokenSubject,
} from './standin-token.endpoint.js';
