import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { assertInteger, assertKnownKeys, assertString, describeValue } from '@inference-shield/core';
import { findDefaultModelsDir } from '../model-paths.js';
import type { ResolvedSampleModelOptions } from './sample-model-options.interface.js';

const KNOWN_OPTIONS = ['modelsDir', 'maxBatchRows', 'maxElementsPerInput'] as const;

/** Default batch limit: 1024 rows of the sample model's 8 features is about 80 kB of JSON. */
export const DEFAULT_MAX_BATCH_ROWS = 1024;
export const DEFAULT_MAX_ELEMENTS_PER_INPUT = 65_536;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Validate `SampleModelModule` options once, at start-up. Unknown keys, out-of-range limits and a
 * models folder that does not exist are `TypeError`s naming the field.
 */
export function resolveSampleModelOptions(raw: unknown): ResolvedSampleModelOptions {
  assertKnownKeys('SampleModelModule options', raw ?? {}, KNOWN_OPTIONS);
  const options = (raw ?? {}) as Record<string, unknown>;

  let modelsDir: string;
  if (options.modelsDir === undefined) {
    const found = findDefaultModelsDir();
    if (found === undefined) {
      throw new TypeError(
        '"modelsDir" is required: no sample-model/models folder was found above this module',
      );
    }
    modelsDir = found;
  } else {
    assertString('modelsDir', options.modelsDir);
    modelsDir = isAbsolute(options.modelsDir) ? options.modelsDir : resolve(options.modelsDir);
  }
  if (!isDirectory(modelsDir))
    throw new TypeError(`"modelsDir" must be an existing folder, got ${describeValue(modelsDir)}`);

  const maxBatchRows = options.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS;
  assertInteger('maxBatchRows', maxBatchRows, 1, 65_536);
  const maxElementsPerInput = options.maxElementsPerInput ?? DEFAULT_MAX_ELEMENTS_PER_INPUT;
  assertInteger('maxElementsPerInput', maxElementsPerInput, 1, 16_777_216);

  return Object.freeze({
    modelsDir,
    limits: Object.freeze({ maxBatchRows, maxElementsPerInput }),
  });
}
