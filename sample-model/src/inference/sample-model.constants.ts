/** Injection token of the resolved, frozen {@link ResolvedSampleModelOptions}. */
export const SAMPLE_MODEL_OPTIONS: unique symbol = Symbol('SHIELD_SAMPLE_MODEL_OPTIONS');

/** The version every model folder is served as (one version per folder). */
export const MODEL_VERSION = '1';

/** The file each model folder must hold. */
export const MODEL_FILE = 'model.onnx';
