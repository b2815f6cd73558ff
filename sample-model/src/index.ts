/**
 * The sample model of Inference Shield: a fraud-scoring logistic regression exported to ONNX,
 * served by onnxruntime over the Open Inference Protocol (KServe v2 REST).
 */
export { SampleModelModule } from './inference/sample-model.module.js';
export { InferenceController } from './inference/inference.controller.js';
export { ModelRegistry, type LoadedModel } from './inference/model-registry.service.js';
export { validateInferRequest } from './inference/infer-request.validation.js';
export {
  resolveSampleModelOptions,
  DEFAULT_MAX_BATCH_ROWS,
  DEFAULT_MAX_ELEMENTS_PER_INPUT,
} from './inference/sample-model-options.resolver.js';
export { SAMPLE_MODEL_OPTIONS, MODEL_VERSION } from './inference/sample-model.constants.js';
export type {
  SampleModelModuleOptions,
  ResolvedSampleModelOptions,
} from './inference/sample-model-options.interface.js';
export type {
  InferLimits,
  V2Datatype,
  V2InferResponse,
  V2ModelMetadata,
  V2OutputTensor,
  V2TensorMetadata,
  ValidatedInferRequest,
  ValidatedInputTensor,
} from './inference/v2-protocol.interface.js';
export { findDefaultModelsDir } from './model-paths.js';
