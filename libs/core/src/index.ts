/**
 * `@inference-shield/core`: what applications use of what every Inference Shield package shares:
 * the error catalogue and its one HTTP mapping, the exception filters, the `ca` option's shape and
 * the certificate and SPIFFE helpers. The packages' shared plumbing (option checks, certificate
 * loading and watching) is in `@inference-shield/core/internal`, which is not a public API.
 */
export { ERROR_CATALOGUE, isShieldErrorCode, type ShieldErrorCode } from './error-codes.js';
export { ShieldError, isShieldError, type ShieldErrorDetails } from './shield.error.js';
export { toHttpResponse, codeOf, type ShieldHttpResponse } from './http-error.mapping.js';
export { ShieldExceptionFilter, ShieldRedactingExceptionFilter } from './shield-exception.filter.js';
export type { CaSource } from './ca-source.js';
export type { TlsFiles, LoadedTlsBundle } from './certificate.loader.js';
export {
  certificateFingerprint,
  spiffeIdOf,
  parseSpiffeId,
  subjectAltNames,
  type SpiffeId,
  type SubjectAltNames,
  type SubjectAltNameSource,
} from './certificate.inspect.js';
