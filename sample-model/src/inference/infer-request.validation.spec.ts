import { isShieldError } from '@inference-shield/core';
import { describe, expect, it } from 'vitest';
import { validateInferRequest } from './infer-request.validation.js';
import type { InferLimits, V2ModelMetadata } from './v2-protocol.interface.js';

const model: V2ModelMetadata = {
  name: 'fraud-lr',
  versions: ['1'],
  platform: 'onnxruntime',
  inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 3] }],
  outputs: [{ name: 'fraud_probability', datatype: 'FP32', shape: [-1, 1] }],
};
const twoOutputs: V2ModelMetadata = {
  ...model,
  outputs: [...model.outputs, { name: 'logit', datatype: 'FP32', shape: [-1, 1] }],
};
const limits: InferLimits = { maxBatchRows: 4, maxElementsPerInput: 12 };

const row = [1, 2, 3];
const input = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'features',
  datatype: 'FP32',
  shape: [2, 3],
  data: [...row, ...row],
  ...over,
});
const body = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  inputs: [input()],
  ...over,
});

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isShieldError(err) ? err.code : `not a ShieldError: ${String(err)}`;
  }
  return 'accepted';
}

describe('validateInferRequest refuses', () => {
  it.each<[string, unknown]>([
    ['a null body', null],
    ['an array body', [input()]],
    ['a string body', 'features=1,2,3'],
    ['an unknown top-level field', body({ model: 'other' })],
    ['a __proto__ member', JSON.parse(`{"inputs":[${JSON.stringify(input())}],"__proto__":{"x":1}}`)],
    ['missing inputs', {}],
    ['inputs not an array', body({ inputs: input() })],
    ['empty inputs', body({ inputs: [] })],
    ['too many inputs', body({ inputs: [input(), input()] })],
    ['a huge inputs array (refused before reading it)', body({ inputs: new Array(100_000).fill(input()) })],
    ['an input that is not an object', body({ inputs: [[1, 2, 3]] })],
    ['a wrong input name', body({ inputs: [input({ name: 'feature' })] })],
    ['an input name of another case', body({ inputs: [input({ name: 'FEATURES' })] })],
    ['a missing input name', body({ inputs: [{ datatype: 'FP32', shape: [1, 3], data: row }] })],
    ['an unknown field in an input', body({ inputs: [input({ contents: row })] })],
    ['a lower-case datatype', body({ inputs: [input({ datatype: 'fp32' })] })],
    ['another datatype', body({ inputs: [input({ datatype: 'FP64' })] })],
    ['a missing datatype', body({ inputs: [{ name: 'features', shape: [1, 3], data: row }] })],
    ['a shape of the wrong rank', body({ inputs: [input({ shape: [6] })] })],
    ['a shape of rank 3', body({ inputs: [input({ shape: [2, 3, 1] })] })],
    ['a changed fixed dimension', body({ inputs: [input({ shape: [3, 2] })] })],
    ['a zero batch', body({ inputs: [input({ shape: [0, 3], data: [] })] })],
    ['a negative dimension', body({ inputs: [input({ shape: [-2, 3] })] })],
    ['a fractional dimension', body({ inputs: [input({ shape: [1.5, 3] })] })],
    ['a string dimension', body({ inputs: [input({ shape: ['2', 3] })] })],
    ['a missing shape', body({ inputs: [{ name: 'features', datatype: 'FP32', data: row }] })],
    [
      'more rows than maxBatchRows',
      body({ inputs: [input({ shape: [5, 3], data: new Array(15).fill(1) })] }),
    ],
    ['an absurd batch', body({ inputs: [input({ shape: [Number.MAX_SAFE_INTEGER, 3], data: [] })] })],
    ['fewer values than the shape', body({ inputs: [input({ data: row })] })],
    ['more values than the shape', body({ inputs: [input({ data: [...row, ...row, 4] })] })],
    ['data not an array', body({ inputs: [input({ data: '1,2,3,1,2,3' })] })],
    ['a missing data field', body({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 3] }] })],
    ['a NaN-like string', body({ inputs: [input({ data: [1, 2, 'NaN', 1, 2, 3] })] })],
    ['a numeric string', body({ inputs: [input({ data: [1, 2, '3', 1, 2, 3] })] })],
    ['null in data', body({ inputs: [input({ data: [1, 2, null, 1, 2, 3] })] })],
    ['a boolean in data', body({ inputs: [input({ data: [1, 2, true, 1, 2, 3] })] })],
    ['NaN in data', body({ inputs: [input({ data: [1, 2, Number.NaN, 1, 2, 3] })] })],
    ['Infinity in data', body({ inputs: [input({ data: [1, 2, Infinity, 1, 2, 3] })] })],
    ['a value past float32 range', body({ inputs: [input({ data: [1, 2, 1e39, 1, 2, 3] })] })],
    ['an object in data', body({ inputs: [input({ data: [1, 2, { v: 3 }, 1, 2, 3] })] })],
    [
      'ragged nested data',
      body({
        inputs: [
          input({
            data: [
              [1, 2, 3, 1],
              [2, 3],
            ],
          }),
        ],
      }),
    ],
    ['nested data with the wrong row count', body({ inputs: [input({ data: [[1, 2, 3]] })] })],
    ['nested data one level too deep', body({ inputs: [input({ data: [[[1, 2, 3]], [[1, 2, 3]]] })] })],
    [
      'nested data deeper than the shape',
      body({
        inputs: [
          input({
            data: [
              [[1], [2], [3]],
              [[1], [2], [3]],
            ],
          }),
        ],
      }),
    ],
    ['nested rows mixed with numbers', body({ inputs: [input({ data: [[1, 2, 3], 1, 2, 3] })] })],
    ['non-empty input parameters', body({ inputs: [input({ parameters: { binary_data_size: 24 } })] })],
    ['input parameters not an object', body({ inputs: [input({ parameters: 'x' })] })],
    ['non-empty request parameters', body({ parameters: { binary_data_output: true } })],
    ['an empty id', body({ id: '' })],
    ['an id with a newline', body({ id: 'a\nb' })],
    ['a non-ASCII id', body({ id: 'caf\u00e9' })],
    ['an id of 129 characters', body({ id: 'x'.repeat(129) })],
    ['a numeric id', body({ id: 42 })],
    ['an unknown output', body({ outputs: [{ name: 'logits' }] })],
    ['outputs not an array', body({ outputs: { name: 'fraud_probability' } })],
    ['empty outputs', body({ outputs: [] })],
    ['an output with an unknown field', body({ outputs: [{ name: 'fraud_probability', shape: [1] }] })],
    [
      'an output with parameters',
      body({ outputs: [{ name: 'fraud_probability', parameters: { binary_data: true } }] }),
    ],
  ])('%s → ERR_INVALID_INPUT', (_name, value) => {
    expect(codeOf(() => validateInferRequest(value, model, limits))).toBe('ERR_INVALID_INPUT');
  });

  it.each<[string, unknown]>([
    ['a repeated output', body({ outputs: [{ name: 'fraud_probability' }, { name: 'fraud_probability' }] })],
    [
      'more outputs than the model has',
      body({ outputs: [{ name: 'logit' }, { name: 'logit' }, { name: 'x' }] }),
    ],
  ])('%s → ERR_INVALID_INPUT', (_name, value) => {
    expect(codeOf(() => validateInferRequest(value, twoOutputs, limits))).toBe('ERR_INVALID_INPUT');
  });

  it('refuses a repeated input of a two-input model', () => {
    const twoInputs: V2ModelMetadata = {
      ...model,
      inputs: [...model.inputs, { name: 'mask', datatype: 'FP32', shape: [-1, 3] }],
    };
    const value = body({ inputs: [input(), input()] });
    expect(codeOf(() => validateInferRequest(value, twoInputs, limits))).toBe('ERR_INVALID_INPUT');
  });

  it('refuses more elements than maxElementsPerInput on a dynamic inner dimension', () => {
    const wide: V2ModelMetadata = {
      ...model,
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, -1] }],
    };
    const value = body({ inputs: [input({ shape: [1, 13], data: new Array(13).fill(0) })] });
    expect(codeOf(() => validateInferRequest(value, wide, limits))).toBe('ERR_INVALID_INPUT');
  });

  it('never quotes the sent values in the refusal', () => {
    try {
      validateInferRequest(
        body({ inputs: [input({ data: [1, 2, 'secret-feature-987', 1, 2, 3] })] }),
        model,
        limits,
      );
      expect.unreachable();
    } catch (err) {
      expect(isShieldError(err)).toBe(true);
      const text = JSON.stringify({
        err,
        message: (err as Error).message,
        details: (err as { details: unknown }).details,
      });
      expect(text).not.toContain('secret-feature-987');
      expect((err as Error).message).toBe('The inference input is invalid.');
    }
  });
});

describe('validateInferRequest accepts', () => {
  it('flat row-major data and returns a Float32Array', () => {
    const out = validateInferRequest(body({ id: 'req-1' }), model, limits);
    expect(out.id).toBe('req-1');
    expect(out.outputs).toEqual(['fraud_probability']);
    expect(out.inputs).toHaveLength(1);
    expect(out.inputs[0]?.name).toBe('features');
    expect(out.inputs[0]?.shape).toEqual([2, 3]);
    expect(out.inputs[0]?.data).toBeInstanceOf(Float32Array);
    expect(Array.from(out.inputs[0]?.data ?? [])).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it('nested data matching the shape, flattened the same way', () => {
    const out = validateInferRequest(
      body({
        inputs: [
          input({
            data: [
              [1, 2, 3],
              [4, 5, 6],
            ],
          }),
        ],
      }),
      model,
      limits,
    );
    expect(Array.from(out.inputs[0]?.data ?? [])).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('the batch limit itself, negative and extreme finite float32 values', () => {
    const data = [-1.5, 3.4e38, -3.4e38, 0, 1e-45, 7, 8, 9, 10, 11, 12, 13];
    const out = validateInferRequest(body({ inputs: [input({ shape: [4, 3], data })] }), model, limits);
    expect(out.inputs[0]?.shape).toEqual([4, 3]);
    expect(out.inputs[0]?.data[0]).toBe(-1.5);
  });

  it('empty parameters objects and an explicit output list, in the order asked', () => {
    const out = validateInferRequest(
      {
        parameters: {},
        inputs: [input({ parameters: {} })],
        outputs: [{ name: 'logit', parameters: {} }, { name: 'fraud_probability' }],
      },
      twoOutputs,
      limits,
    );
    expect(out.outputs).toEqual(['logit', 'fraud_probability']);
    expect('id' in out).toBe(false);
  });
});
