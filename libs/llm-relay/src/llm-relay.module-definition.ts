import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { LlmRelayModuleOptions } from './llm-relay-options.interface.js';

/** `LlmRelayModule.forRoot(options)` and `forRootAsync({ imports, useFactory, inject })`. */
export const {
  ConfigurableModuleClass: ConfigurableLlmRelayModule,
  MODULE_OPTIONS_TOKEN: RAW_LLM_RELAY_OPTIONS,
  OPTIONS_TYPE: LLM_RELAY_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: LLM_RELAY_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<LlmRelayModuleOptions>({ moduleName: 'ShieldLlmRelay' })
  .setClassMethodName('forRoot')
  .build();
