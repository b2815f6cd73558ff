import { sigmoid } from './synthetic-data.js';

/**
 * A fitted logistic regression over standardized features: p = sigmoid(((x - mean) / std) · w + b).
 * The ONNX graph computes exactly this (Sub, Div, MatMul, Add, Sigmoid), so it takes raw features.
 */
export interface LogisticModel {
  readonly mean: Float64Array;
  readonly std: Float64Array;
  readonly weights: Float64Array;
  readonly bias: number;
}

/** Gradient-descent settings; the defaults converge on the sample data in well under a second. */
export interface TrainOptions {
  readonly epochs?: number;
  readonly learningRate?: number;
  /** L2 penalty on the weights (not the bias). */
  readonly l2?: number;
}

/** Column means and standard deviations of `rows` (a constant column gets std 1, never 0). */
export function standardization(
  rows: readonly Float64Array[],
  width: number,
): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(width);
  const std = new Float64Array(width);
  for (const row of rows) for (let j = 0; j < width; j++) mean[j] = (mean[j] ?? 0) + (row[j] ?? 0);
  for (let j = 0; j < width; j++) mean[j] = (mean[j] ?? 0) / rows.length;
  for (const row of rows) {
    for (let j = 0; j < width; j++) {
      const d = (row[j] ?? 0) - (mean[j] ?? 0);
      std[j] = (std[j] ?? 0) + d * d;
    }
  }
  for (let j = 0; j < width; j++) {
    const s = Math.sqrt((std[j] ?? 0) / rows.length);
    // A zero divisor would put Inf/NaN in the graph for every input.
    std[j] = s > 1e-12 ? s : 1;
  }
  return { mean, std };
}

/**
 * Fit by full-batch gradient descent on the mean log-loss. Deterministic: no randomness, fixed
 * iteration order, so the same data give bit-identical parameters.
 */
export function trainLogisticRegression(
  rows: readonly Float64Array[],
  labels: Uint8Array,
  width: number,
  options: TrainOptions = {},
): LogisticModel {
  const epochs = options.epochs ?? 2000;
  const learningRate = options.learningRate ?? 0.5;
  const l2 = options.l2 ?? 0;
  const { mean, std } = standardization(rows, width);
  const n = rows.length;
  const z = rows.map((row) => {
    const out = new Float64Array(width);
    for (let j = 0; j < width; j++) out[j] = ((row[j] ?? 0) - (mean[j] ?? 0)) / (std[j] ?? 1);
    return out;
  });
  const weights = new Float64Array(width);
  let bias = 0;
  const grad = new Float64Array(width);
  for (let epoch = 0; epoch < epochs; epoch++) {
    grad.fill(0);
    let gradBias = 0;
    for (let i = 0; i < n; i++) {
      const zi = z[i] ?? grad;
      let logit = bias;
      for (let j = 0; j < width; j++) logit += (zi[j] ?? 0) * (weights[j] ?? 0);
      const err = sigmoid(logit) - (labels[i] ?? 0);
      for (let j = 0; j < width; j++) grad[j] = (grad[j] ?? 0) + err * (zi[j] ?? 0);
      gradBias += err;
    }
    for (let j = 0; j < width; j++) {
      weights[j] = (weights[j] ?? 0) - learningRate * ((grad[j] ?? 0) / n + l2 * (weights[j] ?? 0));
    }
    bias -= learningRate * (gradBias / n);
  }
  return { mean, std, weights, bias };
}

/**
 * The same model with every parameter rounded to float32, as it is stored in the ONNX graph.
 * Predictions for the fixtures are made with these, so the runtime can match them to 1e-5.
 */
export function toFloat32Parameters(model: LogisticModel): LogisticModel {
  const round = (a: Float64Array): Float64Array => Float64Array.from(a, (v) => Math.fround(v));
  return {
    mean: round(model.mean),
    std: round(model.std),
    weights: round(model.weights),
    bias: Math.fround(model.bias),
  };
}

/** Fraud probability of one raw row, computed the way the ONNX graph does. */
export function predictProbability(model: LogisticModel, row: ArrayLike<number>): number {
  let logit = model.bias;
  for (let j = 0; j < model.weights.length; j++) {
    logit += (((row[j] ?? 0) - (model.mean[j] ?? 0)) / (model.std[j] ?? 1)) * (model.weights[j] ?? 0);
  }
  return sigmoid(logit);
}

/** Share of rows whose thresholded score (>= 0.5) equals the label. */
export function accuracy(scores: ArrayLike<number>, labels: Uint8Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (((scores[i] ?? 0) >= 0.5 ? 1 : 0) === labels[i]) correct++;
  return correct / labels.length;
}

/**
 * Area under the ROC curve by the Mann-Whitney U statistic, with average ranks for ties:
 * the probability that a random fraud scores above a random legitimate transaction.
 */
export function rocAuc(scores: ArrayLike<number>, labels: Uint8Array): number {
  const order = Array.from({ length: labels.length }, (_, i) => i).sort(
    (a, b) => (scores[a] ?? 0) - (scores[b] ?? 0) || a - b,
  );
  let positives = 0;
  let rankSumPositives = 0;
  for (let start = 0; start < order.length;) {
    let end = start;
    const value = scores[order[start] ?? 0] ?? 0;
    while (end + 1 < order.length && (scores[order[end + 1] ?? 0] ?? 0) === value) end++;
    // Ranks are 1-based; tied scores share the mean of their ranks.
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) {
      if (labels[order[k] ?? 0] === 1) {
        positives++;
        rankSumPositives += rank;
      }
    }
    start = end + 1;
  }
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSumPositives - (positives * (positives + 1)) / 2) / (positives * negatives);
}
