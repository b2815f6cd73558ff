/**
 * Train the sample fraud model and write `sample-model/models/fraud-lr/{model.onnx,fixtures.json}`.
 *
 *   npx tsc -p tsconfig.build.json && node dist/sample-model/src/training/train.js [outDir]
 *
 * Deterministic: rerunning it rewrites the same bytes, so `git diff` shows nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findDefaultModelsDir } from '../model-paths.js';
import { formatFixtures, trainFraudModel } from './train-fraud-model.js';

function outputDir(): string {
  const arg = process.argv[2];
  if (arg !== undefined) return resolve(arg);
  const models = findDefaultModelsDir(import.meta.url);
  if (models === undefined) {
    throw new Error(
      'sample-model/models not found above this script; pass the output folder as the first argument',
    );
  }
  return join(models, 'fraud-lr');
}

const dir = outputDir();
const { onnx, fixtures, report } = trainFraudModel();
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'model.onnx'), onnx);
writeFileSync(join(dir, 'fixtures.json'), formatFixtures(fixtures));

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
process.stdout.write(
  [
    `fraud-lr: logistic regression on synthetic transactions (seed ${report.seed})`,
    `  train rows ${report.trainRows} (fraud ${pct(report.fraudRateTrain)}), held-out rows ${report.testRows} (fraud ${pct(report.fraudRateTest)})`,
    `  held-out accuracy ${pct(report.testAccuracy)} (always "not fraud": ${pct(report.testMajorityAccuracy)})`,
    `  held-out ROC AUC  ${report.testAuc.toFixed(4)}`,
    `  (the hidden labelling rule itself: accuracy ${pct(report.trueRuleAccuracy)}, AUC ${report.trueRuleAuc.toFixed(4)})`,
    `  wrote ${join(dir, 'model.onnx')} (${onnx.length} bytes) and fixtures.json`,
  ].join('\n') + '\n',
);
