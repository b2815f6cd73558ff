/**
 * `@inference-shield/llm-relay`: an OpenAI-compatible, identity-aware relay for hosted and internal
 * LLMs. (Being built: see the package README.)
 */
export const LLM_RELAY_PACKAGE = '@inference-shield/llm-relay';
