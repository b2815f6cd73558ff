import { Module } from '@nestjs/common';
import { LLM_RELAY_OPTIONS } from './llm-relay.constants.js';
import { ConfigurableLlmRelayModule, RAW_LLM_RELAY_OPTIONS } from './llm-relay.module-definition.js';
import { resolveLlmRelayOptions } from './llm-relay-options.resolver.js';
import { LlmRelayController } from './llm-relay.controller.js';
import { LlmRelayService } from './llm-relay.service.js';

/**
 * An OpenAI-compatible relay inside your app: `GET /v1/models`, `GET /v1/models/{id}`,
 * `POST /v1/chat/completions`, `POST /v1/responses`, `POST /v1/embeddings`, behind
 * `IdentityModule`'s guard, to the upstreams of `UpstreamModule` (which must be imported too).
 * Options are checked when the module starts; a bad one stops `app.init()`.
 *
 * @example
 * LlmRelayModule.forRoot({
 *   upstreams: { llm: { assertCaller: true } },
 *   models: { 'gpt-4o-mini': { upstream: 'llm' } },
 *   access: { 'gpt-4o-mini': [{ scopes: ['llm:chat'] }] },
 *   budgets: { perPrincipal: { requestsPerMinute: 60, tokensPerMinute: 40_000 } },
 * })
 */
@Module({
  controllers: [LlmRelayController],
  providers: [
    { provide: LLM_RELAY_OPTIONS, useFactory: resolveLlmRelayOptions, inject: [RAW_LLM_RELAY_OPTIONS] },
    LlmRelayService,
  ],
  exports: [LlmRelayService],
})
export class LlmRelayModule extends ConfigurableLlmRelayModule {}
