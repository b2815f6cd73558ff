import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Fixtures {
  input: string;
  output: string;
  feature_names: string[];
  tolerance: number;
  cases: { features: number[]; expected: number }[];
}

const dir = fileURLToPath(new URL('../../models/fraud-lr/', import.meta.url));
const fixtures = JSON.parse(readFileSync(`${dir}fixtures.json`, 'utf8')) as Fixtures;

describe('the committed fraud-lr model in onnxruntime', () => {
  let session: InferenceSession;
  beforeAll(async () => {
    session = await InferenceSession.create(`${dir}model.onnx`);
  });
  afterAll(async () => {
    await session.release();
  });

  it('declares features float32 [N, 8] and fraud_probability float32 [N, 1]', () => {
    expect(session.inputMetadata).toEqual([
      { name: fixtures.input, isTensor: true, type: 'float32', shape: ['N', fixtures.feature_names.length] },
    ]);
    expect(session.outputMetadata).toEqual([
      { name: fixtures.output, isTensor: true, type: 'float32', shape: ['N', 1] },
    ]);
  });

  it('matches the training script on every fixture row, as one batch', async () => {
    const width = fixtures.feature_names.length;
    const data = Float32Array.from(fixtures.cases.flatMap((c) => c.features));
    const out = await session.run({
      [fixtures.input]: new Tensor('float32', data, [fixtures.cases.length, width]),
    });
    const scores = out[fixtures.output];
    expect(scores?.dims).toEqual([fixtures.cases.length, 1]);
    fixtures.cases.forEach((c, i) => {
      expect(Math.abs(Number(scores?.data[i]) - c.expected)).toBeLessThanOrEqual(fixtures.tolerance);
    });
  });

  it.each(fixtures.cases.map((c, i) => [i, c] as const))(
    'matches fixture row %i on its own',
    async (_i, c) => {
      const out = await session.run({
        [fixtures.input]: new Tensor('float32', Float32Array.from(c.features), [1, c.features.length]),
      });
      expect(Math.abs(Number(out[fixtures.output]?.data[0]) - c.expected)).toBeLessThanOrEqual(
        fixtures.tolerance,
      );
    },
  );

  it('spans the score range: fixtures hold both clear legitimate and clear fraud rows', () => {
    const expected = fixtures.cases.map((c) => c.expected);
    expect(Math.min(...expected)).toBeLessThan(0.01);
    expect(Math.max(...expected)).toBeGreaterThan(0.99);
  });
});
