/**
 * Types of the Open Inference Protocol (KServe v2) REST messages this server speaks.
 * Field names follow the protocol's JSON (snake_case on the wire).
 */

/** v2 tensor datatypes this server can feed to a model. Only FP32 today; anything else is refused. */
export type V2Datatype = 'FP32';

/** One input or output of a model, as `GET /v2/models/{name}` describes it; `-1` marks a dynamic dim. */
export interface V2TensorMetadata {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
}

/** `GET /v2/models/{name}` response body. */
export interface V2ModelMetadata {
  readonly name: string;
  readonly versions: readonly string[];
  readonly platform: 'onnxruntime';
  readonly inputs: readonly V2TensorMetadata[];
  readonly outputs: readonly V2TensorMetadata[];
}

/** An input tensor after validation: its shape and its values, already in a typed array. */
export interface ValidatedInputTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A `POST /v2/models/{name}/infer` body that passed {@link validateInferRequest}. */
export interface ValidatedInferRequest {
  readonly id?: string;
  /** One entry per model input, in the model's input order. */
  readonly inputs: readonly ValidatedInputTensor[];
  /** Names of the outputs to return, in the order asked (all outputs when the request named none). */
  readonly outputs: readonly string[];
}

/** One output tensor of an infer response. */
export interface V2OutputTensor {
  readonly name: string;
  readonly datatype: V2Datatype;
  readonly shape: readonly number[];
  readonly data: readonly number[];
}

/** `POST /v2/models/{name}/infer` response body. */
export interface V2InferResponse {
  readonly model_name: string;
  readonly model_version: string;
  readonly id?: string;
  readonly outputs: readonly V2OutputTensor[];
}

/** Size limits applied to every infer request (resolved once at start-up). */
export interface InferLimits {
  /** Largest batch (first, dynamic dimension) accepted. */
  readonly maxBatchRows: number;
  /** Largest number of elements in one input tensor. */
  readonly maxElementsPerInput: number;
}
