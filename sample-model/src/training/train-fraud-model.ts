import {
  accuracy,
  predictProbability,
  rocAuc,
  toFloat32Parameters,
  trainLogisticRegression,
} from './logistic-regression.js';
import type { LogisticModel } from './logistic-regression.js';
import { INPUT_NAME, OUTPUT_NAME, exportLogisticModel } from './onnx-export.js';
import {
  FEATURE_COUNT,
  FEATURE_NAMES,
  generateTransactions,
  sigmoid,
  trueFraudLogit,
} from './synthetic-data.js';

/** The seed the committed model was trained with. */
export const TRAINING_SEED = 20_240_611;
/** Rows generated; the last {@link TEST_SHARE} of them are held out. */
export const DATASET_ROWS = 10_000;
export const TEST_SHARE = 0.2;

/** Hand-picked rows for the fixtures, from an ordinary purchase to a textbook fraud. */
const HAND_PICKED_ROWS: readonly (readonly number[])[] = [
  // A small card-present purchase close to home, old account.
  [23.5, 14, 1200, 0.05, 3.2, 1, 1, 0],
  // A mid-sized online purchase in the evening, young account.
  [180, 21, 90, 0.4, 40, 4, 0, 0],
  // A large online foreign purchase at 3 am on a young account, far from home.
  [900, 3, 20, 0.7, 150, 5, 0, 1],
  // Every risk factor at its generator's bound: the score saturates.
  [20_000, 0, 0, 1, 5000, 30, 0, 1],
];
const HELD_OUT_FIXTURE_ROWS = 4;

/** What `fixtures.json` holds: rows and the probabilities the training code predicts for them. */
export interface ModelFixtures {
  readonly model: string;
  readonly input: string;
  readonly output: string;
  readonly feature_names: readonly string[];
  readonly tolerance: number;
  /** Raw feature rows and the probability the training code predicts for each. */
  readonly cases: readonly { readonly features: readonly number[]; readonly expected: number }[];
}

/**
 * `fixtures.json` text, laid out the way prettier would (the repo's lint checks JSON too): one case
 * per line, so a diff shows which row moved. Numbers use JSON's shortest round-trip form.
 */
export function formatFixtures(f: ModelFixtures): string {
  const list = (items: readonly string[]): string => items.map((i) => `    ${i}`).join(',\n');
  const cases = f.cases.map(
    (c) =>
      `{ "features": [${c.features.map((v) => JSON.stringify(v)).join(', ')}], "expected": ${JSON.stringify(c.expected)} }`,
  );
  return [
    '{',
    `  "model": ${JSON.stringify(f.model)},`,
    `  "input": ${JSON.stringify(f.input)},`,
    `  "output": ${JSON.stringify(f.output)},`,
    `  "feature_names": [\n${list(f.feature_names.map((n) => JSON.stringify(n)))}\n  ],`,
    `  "tolerance": ${JSON.stringify(f.tolerance)},`,
    `  "cases": [\n${list(cases)}\n  ]`,
    '}',
    '',
  ].join('\n');
}

/** The outcome of one training run. */
export interface TrainingResult {
  readonly onnx: Uint8Array;
  readonly fixtures: ModelFixtures;
  /** Float32-rounded parameters, as stored in the graph. */
  readonly model: LogisticModel;
  readonly report: {
    readonly seed: number;
    readonly trainRows: number;
    readonly testRows: number;
    readonly fraudRateTrain: number;
    readonly fraudRateTest: number;
    readonly testAccuracy: number;
    readonly testAuc: number;
    /** Accuracy of always answering "not fraud": the floor the model must clear. */
    readonly testMajorityAccuracy: number;
    /** Accuracy and AUC of the hidden labelling rule itself: the ceiling the noise leaves. */
    readonly trueRuleAccuracy: number;
    readonly trueRuleAuc: number;
  };
}

function rate(labels: Uint8Array): number {
  let ones = 0;
  for (const l of labels) ones += l;
  return ones / labels.length;
}

/**
 * Generate the synthetic data, fit, evaluate on the held-out 20 %, export to ONNX and build the
 * fixtures. Pure apart from CPU time: the same seed gives byte-identical ONNX and fixtures.
 */
export function trainFraudModel(seed: number = TRAINING_SEED): TrainingResult {
  const { rows, labels } = generateTransactions(DATASET_ROWS, seed);
  const split = Math.round(DATASET_ROWS * (1 - TEST_SHARE));
  const trainRows = rows.slice(0, split);
  const testRows = rows.slice(split);
  const trainLabels = labels.slice(0, split);
  const testLabels = labels.slice(split);

  // Evaluate with the parameters exactly as the graph stores them (float32).
  const model = toFloat32Parameters(trainLogisticRegression(trainRows, trainLabels, FEATURE_COUNT));
  const testScores = Float64Array.from(testRows, (row) => predictProbability(model, row));
  const testAccuracy = accuracy(testScores, testLabels);
  const testAuc = rocAuc(testScores, testLabels);
  const fraudRateTest = rate(testLabels);
  const ruleScores = Float64Array.from(testRows, (row) => sigmoid(trueFraudLogit(row)));

  const onnx = exportLogisticModel(model, {
    featureNames: FEATURE_NAMES,
    seed,
    testAccuracy,
    testAuc,
    trainRows: trainRows.length,
    testRows: testRows.length,
  });

  const fixtureRows = [
    ...HAND_PICKED_ROWS.map((r) => [...r]),
    ...testRows.slice(0, HELD_OUT_FIXTURE_ROWS).map((r) => Array.from(r)),
  ];
  // The runtime sees float32 inputs; predict on the same rounded values.
  const cases = fixtureRows.map((features) => ({
    features,
    expected: predictProbability(
      model,
      features.map((v) => Math.fround(v)),
    ),
  }));
  const fixtures: ModelFixtures = {
    model: 'fraud-lr',
    input: INPUT_NAME,
    output: OUTPUT_NAME,
    feature_names: [...FEATURE_NAMES],
    tolerance: 1e-5,
    cases,
  };

  return {
    onnx,
    fixtures,
    model,
    report: {
      seed,
      trainRows: trainRows.length,
      testRows: testRows.length,
      fraudRateTrain: rate(trainLabels),
      fraudRateTest,
      testAccuracy,
      testAuc,
      testMajorityAccuracy: Math.max(fraudRateTest, 1 - fraudRateTest),
      trueRuleAccuracy: accuracy(ruleScores, testLabels),
      trueRuleAuc: rocAuc(ruleScores, testLabels),
    },
  };
}
