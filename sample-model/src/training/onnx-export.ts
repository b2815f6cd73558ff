import onnxProto from 'onnx-proto';
import type { LogisticModel } from './logistic-regression.js';

const { onnx } = onnxProto;

/** Graph input and output names: what a v2 client puts in `inputs[].name` and reads back. */
export const INPUT_NAME = 'features';
export const OUTPUT_NAME = 'fraud_probability';

/** ONNX IR 8 and the default-domain opset 13: both well inside what onnxruntime 1.30 runs. */
export const IR_VERSION = 8;
export const OPSET_VERSION = 13;

/** What the exported file records about itself (ONNX `metadata_props`, in this order). */
export interface ExportMetadata {
  readonly featureNames: readonly string[];
  readonly seed: number;
  readonly testAccuracy: number;
  readonly testAuc: number;
  readonly trainRows: number;
  readonly testRows: number;
}

/**
 * Float32 tensor bytes, little-endian whatever the host (ONNX `raw_data` is defined as
 * little-endian), so the file is the same on every machine.
 */
function float32Raw(values: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] ?? 0, true);
  return bytes;
}

function floatTensor(
  name: string,
  dims: readonly number[],
  values: ArrayLike<number>,
): onnxProto.onnx.ITensorProto {
  return { name, dataType: onnx.TensorProto.DataType.FLOAT, dims: [...dims], rawData: float32Raw(values) };
}

function floatValueInfo(name: string, dims: readonly (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/**
 * Serialize a fitted model as an ONNX `ModelProto`:
 * `features [N, F]` → Sub(mean) → Div(std) → MatMul(W [F, 1]) → Add(b) → Sigmoid → `fraud_probability [N, 1]`.
 * The batch dimension is symbolic (`N`). Standardization lives in the graph, so callers send raw
 * features. No timestamps or paths are written: same model, same bytes.
 */
export function exportLogisticModel(model: LogisticModel, meta: ExportMetadata): Uint8Array {
  const width = model.weights.length;
  if (meta.featureNames.length !== width) {
    throw new TypeError(`"featureNames" must have ${width} entries, got ${meta.featureNames.length}`);
  }
  const graph: onnxProto.onnx.IGraphProto = {
    name: 'fraud_lr',
    docString: 'Logistic regression fraud score over raw transaction features (synthetic training data).',
    input: [floatValueInfo(INPUT_NAME, ['N', width])],
    output: [floatValueInfo(OUTPUT_NAME, ['N', 1])],
    initializer: [
      floatTensor('feature_mean', [width], model.mean),
      floatTensor('feature_std', [width], model.std),
      floatTensor('weights', [width, 1], model.weights),
      floatTensor('bias', [1], [model.bias]),
    ],
    node: [
      { name: 'center', opType: 'Sub', input: [INPUT_NAME, 'feature_mean'], output: ['centered'] },
      { name: 'scale', opType: 'Div', input: ['centered', 'feature_std'], output: ['standardized'] },
      { name: 'project', opType: 'MatMul', input: ['standardized', 'weights'], output: ['projected'] },
      { name: 'shift', opType: 'Add', input: ['projected', 'bias'], output: ['logit'] },
      { name: 'squash', opType: 'Sigmoid', input: ['logit'], output: [OUTPUT_NAME] },
    ],
  };
  const metadataProps = [
    { key: 'feature_names', value: JSON.stringify(meta.featureNames) },
    { key: 'training_data', value: 'synthetic (seeded PRNG, see sample-model/README.md)' },
    { key: 'training_seed', value: String(meta.seed) },
    { key: 'train_rows', value: String(meta.trainRows) },
    { key: 'test_rows', value: String(meta.testRows) },
    { key: 'test_accuracy', value: meta.testAccuracy.toFixed(4) },
    { key: 'test_auc', value: meta.testAuc.toFixed(4) },
  ];
  const message = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET_VERSION }],
    producerName: 'inference-shield',
    producerVersion: '0.1.0',
    modelVersion: 1,
    docString: 'Sample fraud scoring model of Inference Shield.',
    graph,
    metadataProps,
  });
  return onnx.ModelProto.encode(message).finish();
}

/** Decode an ONNX file (used by tests to check what was written). */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
