/**
 * Synthetic card transactions for the sample fraud model. No real data set ships with the packages
 * installed here, so the data are generated from a seeded PRNG and labelled by a known, noisy
 * logistic rule. Same seed, same rows, on every machine (V8's Math.exp/log/cos are fdlibm ports).
 */

/** The model's input features, in column order. The ONNX graph takes them raw, in this order. */
export const FEATURE_NAMES = [
  'amount',
  'hour_of_day',
  'account_age_days',
  'merchant_risk',
  'distance_from_home_km',
  'transactions_last_24h',
  'card_present',
  'foreign_merchant',
] as const;

/** One feature name of {@link FEATURE_NAMES}. */
export type FeatureName = (typeof FEATURE_NAMES)[number];

/** Number of features per row. */
export const FEATURE_COUNT = FEATURE_NAMES.length;

/** A generated data set: `rows[i]` has {@link FEATURE_COUNT} raw features, `labels[i]` is 1 for fraud. */
export interface Dataset {
  readonly rows: readonly Float64Array[];
  readonly labels: Uint8Array;
}

/** mulberry32: a small, fast, seedable 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal deviate by Box-Muller (one of the pair; simplicity over speed here). */
function normal(rand: () => number): number {
  // 1 - u is in (0, 1], so the log is finite.
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function exponential(rand: () => number, mean: number): number {
  return -mean * Math.log(1 - rand());
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/**
 * The hidden rule that labels the data: a logit over the raw features plus a night-time bump that
 * a linear model can only approximate. Kept here so the README and the tests can quote it.
 */
export function trueFraudLogit(row: ArrayLike<number>): number {
  const f = (i: number): number => row[i] ?? 0;
  const [amount, hour, age, risk, distance, tx24h, cardPresent, foreign] = [0, 1, 2, 3, 4, 5, 6, 7].map(
    f,
  ) as [number, number, number, number, number, number, number, number];
  const night = hour < 6 ? 1 : 0;
  return (
    -4.6 +
    0.004 * amount -
    0.0025 * age +
    5.5 * risk +
    0.03 * distance +
    0.35 * tx24h -
    2.2 * cardPresent +
    1.8 * foreign +
    1.2 * night
  );
}

/**
 * Generate `count` labelled transactions from `seed`. Each label is drawn from
 * Bernoulli(sigmoid(trueFraudLogit(row))), so even the true rule misclassifies some rows.
 */
export function generateTransactions(count: number, seed: number): Dataset {
  const rand = mulberry32(seed);
  const rows: Float64Array[] = [];
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    // Amounts are log-normal (median about 45), rounded to cents.
    const amount = Math.round(clamp(Math.exp(3.8 + 1.1 * normal(rand)), 1, 20_000) * 100) / 100;
    const hour = Math.floor(rand() * 24);
    const age = Math.round(clamp(exponential(rand, 700), 0, 3650));
    // Most merchants are low-risk: the square skews the uniform towards 0.
    const risk = Math.round(rand() ** 2 * 1000) / 1000;
    const distance = Math.round(clamp(exponential(rand, 25), 0, 5000) * 10) / 10;
    const tx24h = Math.min(30, Math.floor(exponential(rand, 2.5)));
    const cardPresent = rand() < 0.6 ? 1 : 0;
    const foreign = rand() < 0.1 ? 1 : 0;
    const row = Float64Array.of(amount, hour, age, risk, distance, tx24h, cardPresent, foreign);
    rows.push(row);
    labels[i] = rand() < sigmoid(trueFraudLogit(row)) ? 1 : 0;
  }
  return { rows, labels };
}

/** The logistic function, written to stay finite for large |x|. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}
