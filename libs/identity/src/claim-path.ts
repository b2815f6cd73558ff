import { assertString, describeValue } from '@inference-shield/core/internal';

const MAX_CLAIM_PATH_DEPTH = 8;
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

/**
 * Parses a dotted claim path into segments. Prototype names are refused: a claim lookup must only
 * ever read the token's own JSON members.
 */
export function parseClaimPath(field: string, value: unknown): readonly string[] {
  assertString(field, value);
  const segments = value.split('.');
  if (
    segments.length > MAX_CLAIM_PATH_DEPTH ||
    segments.some((s) => s.length === 0 || FORBIDDEN_SEGMENTS.has(s))
  ) {
    throw new TypeError(
      `"${field}" must be a dotted claim path of at most ${MAX_CLAIM_PATH_DEPTH} non-empty names, got ${describeValue(value)}`,
    );
  }
  return Object.freeze(segments);
}
