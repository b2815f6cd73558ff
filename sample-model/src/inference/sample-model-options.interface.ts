import type { InferLimits } from './v2-protocol.interface.js';

/** Options of `SampleModelModule.forRoot()`; every field is optional. */
export interface SampleModelModuleOptions {
  /**
   * Folder holding one sub-folder per model, each with a `model.onnx` (the folder name is the model
   * name in the URL). Default: the repository's `sample-model/models`.
   */
  readonly modelsDir?: string;
  /** Largest batch (rows) one infer request may carry. Default 1024, at most 65 536. */
  readonly maxBatchRows?: number;
  /** Largest number of values in one input tensor. Default 65 536, at most 16 777 216. */
  readonly maxElementsPerInput?: number;
  /**
   * Readiness and the upstreams of `UpstreamModule` (when the app has it): `'report'` (default)
   * reports each upstream's reachability in `/health/ready` and stays ready when one is down or
   * refuses our certificate; `'required'` makes the sample not ready then.
   */
  readonly upstreamReadiness?: 'report' | 'required';
}

/** The options after start-up validation: absolute paths, defaults applied, frozen. */
export interface ResolvedSampleModelOptions {
  readonly modelsDir: string;
  readonly limits: InferLimits;
  readonly upstreamReadiness: 'report' | 'required';
}
