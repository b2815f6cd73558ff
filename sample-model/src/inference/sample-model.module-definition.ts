import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { SampleModelModuleOptions } from './sample-model-options.interface.js';

/** `SampleModelModule.forRoot(options)` and `forRootAsync({ imports, useFactory, inject })`. */
export const {
  ConfigurableModuleClass: ConfigurableSampleModelModule,
  MODULE_OPTIONS_TOKEN: RAW_SAMPLE_MODEL_OPTIONS,
  OPTIONS_TYPE: SAMPLE_MODEL_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: SAMPLE_MODEL_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SampleModelModuleOptions>({ moduleName: 'ShieldSampleModel' })
  .setClassMethodName('forRoot')
  .build();
