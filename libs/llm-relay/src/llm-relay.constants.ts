/** Injection token of the resolved, frozen relay options. */
export const LLM_RELAY_OPTIONS: unique symbol = Symbol.for('@inference-shield/llm-relay:options');

/** The relay's routes, as usage events name them. */
export const RELAY_ROUTES = Object.freeze({
  chat: 'POST /v1/chat/completions',
  responses: 'POST /v1/responses',
  embeddings: 'POST /v1/embeddings',
  models: 'GET /v1/models',
  model: 'GET /v1/models/:id',
});

/** Upstream paths (under the upstream's base URL, e.g. `https://llm/v1/`). */
export const UPSTREAM_PATHS = Object.freeze({
  chat: 'chat/completions',
  responses: 'responses',
  embeddings: 'embeddings',
});

/** Bytes of an upstream refusal read for its error code; beyond that it is dropped. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** Bytes of one server-sent event held while waiting for its end (a longer one fails the stream). */
export const MAX_SSE_EVENT_BYTES = 4 * 1024 * 1024;
/** Bytes per token of the relay's output estimate while streaming (OpenAI's rule of thumb). */
export const BYTES_PER_TOKEN = 4;
