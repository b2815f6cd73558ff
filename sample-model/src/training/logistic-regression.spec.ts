import { describe, expect, it } from 'vitest';
import {
  accuracy,
  predictProbability,
  rocAuc,
  standardization,
  toFloat32Parameters,
  trainLogisticRegression,
} from './logistic-regression.js';
import { generateTransactions, mulberry32, sigmoid, FEATURE_COUNT } from './synthetic-data.js';

describe('mulberry32', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    const c = mulberry32(8);
    const seqA = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(seqA);
    expect(Array.from({ length: 5 }, c)).not.toEqual(seqA);
    for (const v of seqA) expect(v >= 0 && v < 1).toBe(true);
  });
});

describe('generateTransactions', () => {
  it('gives the same rows and labels for the same seed, with both classes present', () => {
    const one = generateTransactions(500, 3);
    const two = generateTransactions(500, 3);
    expect(two.rows.map((r) => Array.from(r))).toEqual(one.rows.map((r) => Array.from(r)));
    expect(Array.from(two.labels)).toEqual(Array.from(one.labels));
    const frauds = one.labels.reduce((s, l) => s + l, 0);
    expect(frauds).toBeGreaterThan(0);
    expect(frauds).toBeLessThan(500);
    for (const row of one.rows) {
      expect(row).toHaveLength(FEATURE_COUNT);
      expect(row[1]).toBeGreaterThanOrEqual(0);
      expect(row[1]).toBeLessThan(24);
    }
  });
});

describe('sigmoid', () => {
  it.each([
    [0, 0.5],
    [800, 1],
    [-800, 0],
  ])('sigmoid(%d) = %d and stays finite', (x, p) => {
    expect(sigmoid(x)).toBeCloseTo(p, 12);
  });
});

describe('rocAuc', () => {
  it.each([
    ['perfect ranking', [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1],
    ['reversed ranking', [0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0],
    ['all scores tied', [0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5],
    ['one pair misordered of four', [0.1, 0.6, 0.5, 0.9], [0, 0, 1, 1], 0.75],
  ])('%s', (_name, scores, labels, auc) => {
    expect(rocAuc(scores, Uint8Array.from(labels))).toBeCloseTo(auc, 12);
  });

  it('is NaN with a single class', () => {
    expect(rocAuc([0.1, 0.2], Uint8Array.from([1, 1]))).toBeNaN();
  });
});

describe('accuracy', () => {
  it('thresholds at 0.5', () => {
    expect(accuracy([0.49, 0.5, 0.9, 0.1], Uint8Array.from([0, 1, 0, 0]))).toBe(0.75);
  });
});

describe('standardization', () => {
  it('gives a constant column a divisor of 1, never 0', () => {
    const { mean, std } = standardization([Float64Array.of(1, 5), Float64Array.of(3, 5)], 2);
    expect(Array.from(mean)).toEqual([2, 5]);
    expect(Array.from(std)).toEqual([1, 1]);
  });
});

describe('trainLogisticRegression', () => {
  it('learns a separable rule and keeps predictions under float32 rounding', () => {
    // y = 1 when x0 > x1: a linear rule the model must recover almost perfectly.
    const rand = mulberry32(11);
    const rows = Array.from({ length: 400 }, () => Float64Array.of(rand() * 10, rand() * 10));
    const labels = Uint8Array.from(rows, (r) => ((r[0] ?? 0) > (r[1] ?? 0) ? 1 : 0));
    const model = trainLogisticRegression(rows, labels, 2, { epochs: 500 });
    const scores = rows.map((r) => predictProbability(model, r));
    expect(accuracy(scores, labels)).toBeGreaterThan(0.97);
    expect(model.weights[0]).toBeGreaterThan(0);
    expect(model.weights[1]).toBeLessThan(0);
    const rounded = toFloat32Parameters(model);
    for (const r of rows.slice(0, 20)) {
      expect(Math.abs(predictProbability(rounded, r) - predictProbability(model, r))).toBeLessThan(1e-5);
    }
  });
});
