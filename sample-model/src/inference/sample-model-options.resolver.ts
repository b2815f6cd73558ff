import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { findDefaultModelsDir } from '../model-paths.js';
import type { ResolvedSampleModelOptions } from './sample-model-options.interface.js';

const KNOWN_OPTIONS = ['modelsDir', 'maxBatchRows', 'maxElementsPerInput', 'upstreamReadiness'] as const;

/** Default batch limit: 1024 rows of the sample model's 8 features is about 80 kB of JSON. */
export const DEFAULT_MAX_BATCH_ROWS = 1024;
export const DEFAULT_MAX_ELEMENTS_PER_INPUT = 65_536;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : String(value);
}

function integerIn(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`"${field}" must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

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
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) {
    throw new TypeError(`SampleModelModule options must be an object, got ${describe(raw)}`);
  }
  const options = (raw ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!(KNOWN_OPTIONS as readonly string[]).includes(key)) {
      throw new TypeError(
        `SampleModelModule options: unknown option "${key}" (known: ${KNOWN_OPTIONS.join(', ')})`,
      );
    }
  }

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
    if (typeof options.modelsDir !== 'string' || options.modelsDir === '') {
      throw new TypeError(`"modelsDir" must be a non-empty string, got ${describe(options.modelsDir)}`);
    }
    modelsDir = isAbsolute(options.modelsDir) ? options.modelsDir : resolve(options.modelsDir);
  }
  if (!isDirectory(modelsDir))
    throw new TypeError(`"modelsDir" must be an existing folder, got ${describe(modelsDir)}`);

  const maxBatchRows = integerIn('maxBatchRows', options.maxBatchRows ?? DEFAULT_MAX_BATCH_ROWS, 1, 65_536);
  const maxElementsPerInput = integerIn(
    'maxElementsPerInput',
    options.maxElementsPerInput ?? DEFAULT_MAX_ELEMENTS_PER_INPUT,
    1,
    16_777_216,
  );

  const upstreamReadiness = options.upstreamReadiness ?? 'report';
  if (upstreamReadiness !== 'report' && upstreamReadiness !== 'required') {
    throw new TypeError(
      `"upstreamReadiness" must be "report" or "required", got ${describe(upstreamReadiness)}`,
    );
  }

  return Object.freeze({
    modelsDir,
    limits: Object.freeze({ maxBatchRows, maxElementsPerInput }),
    upstreamReadiness,
  });
}
