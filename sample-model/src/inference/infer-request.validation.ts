import { ShieldError } from '@inference-shield/core';
import type {
  InferLimits,
  V2ModelMetadata,
  V2TensorMetadata,
  ValidatedInferRequest,
  ValidatedInputTensor,
} from './v2-protocol.interface.js';

/** Largest finite float32: a bigger finite JSON number would silently become Infinity in the tensor. */
const FLOAT32_MAX = 3.4028234663852886e38;
/** A request id is echoed back, so it is short printable ASCII (no header or log injection). */
const MAX_ID_LENGTH = 128;

/**
 * Refuse with `ERR_INVALID_INPUT`. `detail` goes to operators' logs only; it names the field by its
 * position, never quotes a value the client sent (features can be personal data).
 */
function refuse(detail: string): never {
  throw new ShieldError('ERR_INVALID_INPUT', { detail });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkId(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    refuse(`"id" must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) refuse('"id" must be printable ASCII');
  }
  return value;
}

/**
 * v2 `parameters` carry protocol extensions (binary tensor data, classification, sequence ids...).
 * This server implements none, so any member is refused rather than silently ignored.
 */
function checkParameters(value: unknown, field: string): void {
  if (!isPlainObject(value)) refuse(`"${field}" must be an object`);
  for (const _key in value) refuse(`"${field}" must be empty: no v2 extension is supported`);
}

/** Copy a flat JSON array of numbers into `out`, refusing anything that is not a finite float32. */
function fillFlat(data: readonly unknown[], out: Float32Array, field: string): void {
  if (data.length !== out.length)
    refuse(`"${field}" has ${data.length} values, its shape needs ${out.length}`);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !(v >= -FLOAT32_MAX && v <= FLOAT32_MAX)) {
      refuse(`"${field}[${i}]" must be a finite FP32 number`);
    }
    out[i] = v;
  }
}

/**
 * Copy row-major nested arrays (`[[...], [...]]`) into `out`. Every level must have exactly the
 * length of its dimension, so a ragged array cannot pass, and recursion never goes deeper than the
 * rank of the shape, however deep the JSON is.
 */
function fillNested(
  data: readonly unknown[],
  shape: readonly number[],
  depth: number,
  out: Float32Array,
  offset: number,
  field: string,
): number {
  if (data.length !== shape[depth]) refuse(`"${field}" level ${depth} must have ${shape[depth]} entries`);
  if (depth === shape.length - 1) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !(v >= -FLOAT32_MAX && v <= FLOAT32_MAX)) {
        refuse(`"${field}" holds a value that is not a finite FP32 number (or is nested too deep)`);
      }
      out[offset++] = v;
    }
    return offset;
  }
  for (let i = 0; i < data.length; i++) {
    const child = data[i];
    if (!Array.isArray(child)) refuse(`"${field}" level ${depth + 1} must be an array`);
    offset = fillNested(child, shape, depth + 1, out, offset, field);
  }
  return offset;
}

/** Check a requested shape against the model's and return its element count. */
function checkShape(value: unknown, spec: V2TensorMetadata, limits: InferLimits, field: string): number[] {
  if (!Array.isArray(value) || value.length !== spec.shape.length) {
    refuse(`"${field}" must be an array of ${spec.shape.length} dimensions`);
  }
  const shape: number[] = new Array<number>(value.length);
  let elements = 1;
  for (let d = 0; d < value.length; d++) {
    const dim: unknown = value[d];
    const expected = spec.shape[d] ?? 0;
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 1) {
      refuse(`"${field}[${d}]" must be a positive integer`);
    }
    if (expected !== -1 && dim !== expected) refuse(`"${field}[${d}]" must be ${expected}`);
    if (d === 0 && dim > limits.maxBatchRows)
      refuse(`"${field}[0]" exceeds the batch limit of ${limits.maxBatchRows}`);
    elements *= dim;
    // Checked at every step so the product never grows past what a float64 holds exactly.
    if (elements > limits.maxElementsPerInput) {
      refuse(`"${field}" exceeds ${limits.maxElementsPerInput} elements`);
    }
    shape[d] = dim;
  }
  return shape;
}

function checkInput(
  raw: unknown,
  index: number,
  model: V2ModelMetadata,
  limits: InferLimits,
  seen: boolean[],
): { position: number; tensor: ValidatedInputTensor } {
  const field = `inputs[${index}]`;
  if (!isPlainObject(raw)) refuse(`"${field}" must be an object`);
  let name: unknown;
  let shapeValue: unknown;
  let datatype: unknown;
  let data: unknown;
  for (const key of Object.keys(raw)) {
    switch (key) {
      case 'name':
        name = raw.name;
        break;
      case 'shape':
        shapeValue = raw.shape;
        break;
      case 'datatype':
        datatype = raw.datatype;
        break;
      case 'data':
        data = raw.data;
        break;
      case 'parameters':
        checkParameters(raw.parameters, `${field}.parameters`);
        break;
      default:
        refuse(`"${field}" has an unknown field`);
    }
  }
  if (typeof name !== 'string') refuse(`"${field}.name" must be a string`);
  let position = -1;
  for (let i = 0; i < model.inputs.length; i++) {
    if (model.inputs[i]?.name === name) position = i;
  }
  const spec = model.inputs[position];
  if (spec === undefined) refuse(`"${field}.name" is not an input of model ${model.name}`);
  if (seen[position]) refuse(`"${field}.name" repeats input ${spec.name}`);
  seen[position] = true;
  if (datatype !== spec.datatype) refuse(`"${field}.datatype" must be ${spec.datatype}`);
  const shape = checkShape(shapeValue, spec, limits, `${field}.shape`);
  if (!Array.isArray(data)) refuse(`"${field}.data" must be an array`);
  let elements = 1;
  for (const dim of shape) elements *= dim;
  const out = new Float32Array(elements);
  if (data.length > 0 && Array.isArray(data[0]) && shape.length > 1) {
    fillNested(data, shape, 0, out, 0, `${field}.data`);
  } else {
    fillFlat(data, out, `${field}.data`);
  }
  return { position, tensor: { name: spec.name, shape, data: out } };
}

function hasTensor(tensors: readonly V2TensorMetadata[], name: string): boolean {
  for (const t of tensors) if (t.name === name) return true;
  return false;
}

function allOutputNames(model: V2ModelMetadata): string[] {
  const names = new Array<string>(model.outputs.length);
  for (let i = 0; i < model.outputs.length; i++) names[i] = model.outputs[i]?.name ?? '';
  return names;
}

function checkOutputs(value: unknown, model: V2ModelMetadata): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > model.outputs.length) {
    refuse(`"outputs" must be an array of 1 to ${model.outputs.length} entries`);
  }
  const names: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const raw: unknown = value[i];
    const field = `outputs[${i}]`;
    if (!isPlainObject(raw)) refuse(`"${field}" must be an object`);
    for (const key of Object.keys(raw)) {
      if (key === 'parameters') checkParameters(raw.parameters, `${field}.parameters`);
      else if (key !== 'name') refuse(`"${field}" has an unknown field`);
    }
    const name = raw.name;
    if (typeof name !== 'string' || !hasTensor(model.outputs, name)) {
      refuse(`"${field}.name" is not an output of model ${model.name}`);
    }
    if (names.includes(name)) refuse(`"${field}.name" repeats an output`);
    names.push(name);
  }
  return names;
}

/**
 * Validate a v2 infer request body against a model's metadata and turn it into typed tensors.
 * Pure: (body, metadata, limits) → tensors, or `ShieldError('ERR_INVALID_INPUT')`.
 *
 * Refused: a body that is not an object; unknown fields at any level; non-empty `parameters`; a
 * missing, repeated or unknown input; a datatype other than the model's (exact, case-sensitive);
 * a shape of the wrong rank, with a fixed dimension changed, a batch above `maxBatchRows` or more
 * than `maxElementsPerInput` elements; data whose length differs from the shape's product; any
 * value that is not a finite number in FP32 range (strings, booleans, null, NaN, 1e39); nested
 * data that is ragged or deeper than the shape. Work is bounded by the limits, not by the body.
 *
 * @example
 * const req = validateInferRequest(body, registry.get('fraud-lr').metadata, { maxBatchRows: 1024, maxElementsPerInput: 65536 });
 */
export function validateInferRequest(
  body: unknown,
  model: V2ModelMetadata,
  limits: InferLimits,
): ValidatedInferRequest {
  if (!isPlainObject(body)) refuse('the body must be a JSON object');
  let id: string | undefined;
  let rawInputs: unknown;
  let outputs: string[] | undefined;
  for (const key of Object.keys(body)) {
    switch (key) {
      case 'id':
        id = checkId(body.id);
        break;
      case 'inputs':
        rawInputs = body.inputs;
        break;
      case 'outputs':
        outputs = checkOutputs(body.outputs, model);
        break;
      case 'parameters':
        checkParameters(body.parameters, 'parameters');
        break;
      default:
        refuse('the body has an unknown field');
    }
  }
  // Checked before any element is read, so an array of a million inputs costs nothing.
  if (!Array.isArray(rawInputs) || rawInputs.length !== model.inputs.length) {
    refuse(`"inputs" must be an array of ${model.inputs.length} entries`);
  }
  const seen: boolean[] = new Array<boolean>(model.inputs.length).fill(false);
  const inputs: ValidatedInputTensor[] = new Array<ValidatedInputTensor>(model.inputs.length);
  for (let i = 0; i < rawInputs.length; i++) {
    const { position, tensor } = checkInput(rawInputs[i], i, model, limits, seen);
    inputs[position] = tensor;
  }
  // With exactly one entry per model input and no repeats, every input is now present.
  const resolvedOutputs = outputs ?? allOutputNames(model);
  return id === undefined ? { inputs, outputs: resolvedOutputs } : { id, inputs, outputs: resolvedOutputs };
}
