import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HttpsHealthIndicator } from '@inference-shield/https/health';
import { IdentityHealthIndicator } from '@inference-shield/identity/health';
import { UpstreamHealthIndicator } from '@inference-shield/upstream/health';
import { HealthController } from './health.controller.js';
import { InferenceController } from './inference.controller.js';
import { ModelRegistry } from './model-registry.service.js';
import { ConfigurableSampleModelModule, RAW_SAMPLE_MODEL_OPTIONS } from './sample-model.module-definition.js';
import { resolveSampleModelOptions } from './sample-model-options.resolver.js';
import { SAMPLE_MODEL_OPTIONS } from './sample-model.constants.js';

/**
 * The sample ONNX model served over the Open Inference Protocol (KServe v2 REST). Options are
 * checked when the module is created and the models load in `app.init()`, so a bad folder or a
 * broken model stops the start. Register `ShieldExceptionFilter` globally for coded refusals.
 *
 * @example
 * SampleModelModule.forRoot({ maxBatchRows: 256 })
 */
@Module({
  imports: [TerminusModule],
  controllers: [InferenceController, HealthController],
  providers: [
    HttpsHealthIndicator,
    IdentityHealthIndicator,
    UpstreamHealthIndicator,
    {
      provide: SAMPLE_MODEL_OPTIONS,
      useFactory: resolveSampleModelOptions,
      inject: [RAW_SAMPLE_MODEL_OPTIONS],
    },
    ModelRegistry,
  ],
  exports: [SAMPLE_MODEL_OPTIONS, ModelRegistry],
})
export class SampleModelModule extends ConfigurableSampleModelModule {}
