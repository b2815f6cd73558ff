import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeModel, INPUT_NAME, IR_VERSION, OPSET_VERSION, OUTPUT_NAME } from './onnx-export.js';
import { FEATURE_NAMES } from './synthetic-data.js';
import { formatFixtures, trainFraudModel, TRAINING_SEED, type TrainingResult } from './train-fraud-model.js';

const modelDir = fileURLToPath(new URL('../../models/fraud-lr/', import.meta.url));

describe('trainFraudModel', () => {
  let result: TrainingResult;
  beforeAll(() => {
    result = trainFraudModel();
  });

  it('reproduces the committed model.onnx and fixtures.json byte for byte', () => {
    // The committed artefacts are exactly what the seeded script writes: nobody edited them by hand.
    expect(Buffer.from(result.onnx).equals(readFileSync(`${modelDir}model.onnx`))).toBe(true);
    expect(formatFixtures(result.fixtures)).toBe(readFileSync(`${modelDir}fixtures.json`, 'utf8'));
  });

  it('depends on the seed (the byte-for-byte match above is not a constant)', () => {
    expect(Buffer.from(trainFraudModel(TRAINING_SEED + 1).onnx).equals(Buffer.from(result.onnx))).toBe(false);
  });

  it('learns something: beats "never fraud" on held-out rows, with a high AUC', () => {
    const r = result.report;
    expect(r.testRows).toBe(2000);
    expect(r.trainRows).toBe(8000);
    expect(r.testAccuracy).toBeGreaterThan(r.testMajorityAccuracy + 0.03);
    expect(r.testAuc).toBeGreaterThan(0.88);
    // The hidden rule is the ceiling; a linear fit of it should come close.
    expect(r.testAuc).toBeGreaterThan(r.trueRuleAuc - 0.02);
  });

  it('writes an IR 8 / opset 13 graph Sub → Div → MatMul → Add → Sigmoid with a dynamic batch', () => {
    const model = decodeModel(result.onnx);
    expect(Number(model.irVersion)).toBe(IR_VERSION);
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', OPSET_VERSION]]);
    const graph = model.graph;
    if (!graph?.node || !graph.input || !graph.output) throw new Error('the model has no graph');
    expect(graph.node.map((n) => n.opType)).toEqual(['Sub', 'Div', 'MatMul', 'Add', 'Sigmoid']);
    // Initializers are not graph inputs, so a client cannot override the weights.
    expect(graph.input.map((i) => i.name)).toEqual([INPUT_NAME]);
    expect(graph.output.map((o) => o.name)).toEqual([OUTPUT_NAME]);
    const dims = graph.input[0]?.type?.tensorType?.shape?.dim;
    expect(dims?.[0]?.dimParam).toBe('N');
    expect(Number(dims?.[1]?.dimValue)).toBe(FEATURE_NAMES.length);
    const props = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
    expect(JSON.parse(props.feature_names ?? '[]')).toEqual([...FEATURE_NAMES]);
    expect(props.training_seed).toBe(String(TRAINING_SEED));
    expect(props.test_accuracy).toBe(result.report.testAccuracy.toFixed(4));
    expect(props.training_data).toMatch(/^synthetic/);
  });

  it('stays a small file', () => {
    expect(result.onnx.length).toBeLessThan(4096);
  });
});
