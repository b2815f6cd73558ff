/**
 * Start-up option checks. Each throws a `TypeError` that names the field and what is wrong with
 * the value, so a bad configuration fails `app.init()` with a message an operator can act on.
 * A configuration mistake is a TypeError; untrusted input is a ShieldError (jose's split).
 */

/** Render a value for an error message without dumping secrets or huge objects. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string')
    return value.length > 80 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  return typeof value;
}

/** A plain object whose own keys are all in `allowed`; unknown keys are refused (typos fail closed). */
export function assertKnownKeys(
  field: string,
  value: unknown,
  allowed: readonly string[],
): asserts value is Record<string, unknown> {
  assertObject(field, value);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`"${field}" has an unknown option "${key}"; known options: ${allowed.join(', ')}`);
    }
  }
}

export function assertObject(field: string, value: unknown): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`"${field}" must be an object, got ${describeValue(value)}`);
  }
}

export function assertString(
  field: string,
  value: unknown,
  opts: { nonEmpty?: boolean } = { nonEmpty: true },
): asserts value is string {
  if (typeof value !== 'string' || (opts.nonEmpty !== false && value.length === 0)) {
    throw new TypeError(`"${field}" must be a non-empty string, got ${describeValue(value)}`);
  }
}

export function assertBoolean(field: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean')
    throw new TypeError(`"${field}" must be a boolean, got ${describeValue(value)}`);
}

/** An integer in [min, max]. */
export function assertInteger(
  field: string,
  value: unknown,
  min: number,
  max: number,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`"${field}" must be an integer from ${min} to ${max}, got ${describeValue(value)}`);
  }
}

export function assertOneOf<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
): asserts value is T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new TypeError(
      `"${field}" must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describeValue(value)}`,
    );
  }
}

export function assertStringArray(
  field: string,
  value: unknown,
  opts: { nonEmpty?: boolean } = {},
): asserts value is string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) {
    throw new TypeError(`"${field}" must be an array of non-empty strings, got ${describeValue(value)}`);
  }
  if (opts.nonEmpty && value.length === 0) throw new TypeError(`"${field}" must not be empty`);
}

/**
 * An absolute `https:` URL with no credentials and no fragment. `http:` is refused, whatever the
 * host: there is no plaintext exception for "internal" hosts.
 */
export function parseHttpsUrl(field: string, value: unknown): URL {
  assertString(field, value);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`"${field}" must be an absolute https: URL, got ${describeValue(value)}`);
  }
  if (url.protocol !== 'https:') {
    throw new TypeError(`"${field}" must be an https: URL, got ${describeValue(value)}`);
  }
  if (url.username || url.password) throw new TypeError(`"${field}" must not carry credentials in the URL`);
  if (url.hash) throw new TypeError(`"${field}" must not have a fragment, got ${describeValue(value)}`);
  return url;
}

/** Freeze an object graph (plain objects and arrays; Buffers, URLs and class instances are left as they are). */
export function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    const proto = Object.getPrototypeOf(value);
    if (Array.isArray(value) || proto === Object.prototype || proto === null) {
      Object.freeze(value);
      for (const v of Object.values(value as object)) deepFreeze(v);
    }
  }
  return value;
}
