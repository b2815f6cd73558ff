import { assertObject, describeValue } from './options.validation.js';
import { loadCaBundle, parseCaPem } from './certificate.loader.js';

/**
 * Where a CA bundle comes from, in every package's options: a PEM file (`{ file }`, read at
 * start-up, 1 MiB at most) or PEM text (`{ pem }`, for example from a secret manager). The same
 * shape means the same thing, and passes the same checks, wherever a `ca` option is taken.
 *
 * @example
 * ca: { file: '/run/certs/internal-ca.pem' }
 * ca: { pem: process.env.INTERNAL_CA_PEM }
 */
export type CaSource = { readonly file: string } | { readonly pem: string | Buffer };

/**
 * Check a `ca` option's shape at start-up: exactly one of `file` (a non-empty path) or `pem`
 * (non-empty PEM text or bytes). A bare string is refused, since it was a path in some packages
 * and PEM text in others.
 */
export function assertCaSource(field: string, value: unknown): asserts value is CaSource {
  if (typeof value === 'string') {
    throw new TypeError(
      `"${field}" must be { file: "<path to a PEM file>" } or { pem: "<PEM text>" }, got a bare string ${describeValue(value)}`,
    );
  }
  assertObject(field, value);
  const keys = Object.keys(value);
  if (keys.length !== 1 || (keys[0] !== 'file' && keys[0] !== 'pem')) {
    throw new TypeError(
      `"${field}" must have exactly one of "file" or "pem", got ${keys.length === 0 ? 'none' : keys.map((k) => JSON.stringify(k)).join(', ')}`,
    );
  }
  if ('file' in value) {
    if (typeof value.file !== 'string' || value.file.length === 0) {
      throw new TypeError(`"${field}.file" must be a non-empty path, got ${describeValue(value.file)}`);
    }
    return;
  }
  const pem = value.pem;
  if (!((typeof pem === 'string' || Buffer.isBuffer(pem)) && pem.length > 0)) {
    throw new TypeError(`"${field}.pem" must be non-empty PEM text or bytes, got ${describeValue(pem)}`);
  }
}

/** The CA bundle's bytes, checked: a bad file or bad PEM throws `ERR_CERT_INVALID` naming it. */
export function loadCaSource(field: string, source: CaSource): Buffer {
  return 'file' in source ? loadCaBundle(source.file) : parseCaPem(source.pem, `${field}.pem`);
}

/** A copy safe to freeze into resolved options (a Buffer is copied, so later writes cannot reach it). */
export function copyCaSource(source: CaSource): CaSource {
  return 'file' in source
    ? { file: source.file }
    : { pem: Buffer.isBuffer(source.pem) ? Buffer.from(source.pem) : source.pem };
}
