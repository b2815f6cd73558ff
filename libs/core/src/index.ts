/**
 * `@inference-shield/core`: what applications use of what every Inference Shield package shares:
 * the error catalogue and its one HTTP mapping, the exception filters, the `ca` option's shape, the
 * certificate loader and watcher, and the SPIFFE helpers. The packages' shared plumbing (option
 * checks, file reading, PEM parsing) is in `@inference-shield/core/internal`, not a public API.
 */
export { ERROR_CATALOGUE, isShieldErrorCode, type ShieldErrorCode } from './error-codes.js';
export { ShieldError, isShieldError, type ShieldErrorDetails } from './shield.error.js';
export {
  toHttpResponse,
  codeOf,
  type ChallengeParams,
  type ShieldHttpResponse,
} from './http-error.mapping.js';
export { ShieldExceptionFilter, ShieldRedactingExceptionFilter } from './shield-exception.filter.js';
export type { CaSource } from './ca-source.js';
export {
  loadTlsBundle,
  type TlsFiles,
  type LoadedTlsBundle,
  type LoadTlsBundleOptions,
  type TlsUsage,
} from './certificate.loader.js';
export { TlsBundleWatcher, type TlsBundleWatcherOptions } from './bundle.watcher.js';
export {
  certificateFingerprint,
  spiffeIdOf,
  parseSpiffeId,
  subjectAltNames,
  type SpiffeId,
  type SubjectAltNames,
  type SubjectAltNameSource,
} from './certificate.inspect.js';
