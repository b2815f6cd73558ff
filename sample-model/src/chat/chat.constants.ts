/** The upstream name the sample's chat route calls. */
export const LLM_UPSTREAM = 'llm';

/** Injection token of {@link ChatOptions}. */
export const CHAT_OPTIONS = Symbol('shield:sample:chat-options');

/** The chat route's settings. */
export interface ChatOptions {
  /** The model asked of the upstream when the caller names none. */
  readonly model: string;
}
