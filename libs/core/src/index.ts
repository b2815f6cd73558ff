/**
 * @inference-shield/core: what every Inference Shield module shares: the error catalogue and its one HTTP
 * mapping, the exception filter, start-up option validation, and certificate helpers.
 */
export { ERROR_CATALOGUE, isShieldErrorCode, type ShieldErrorCode } from './error-codes.js';
export { ShieldError, isShieldError, type ShieldErrorDetails } from './shield.error.js';
export { toHttpResponse, codeOf, type ShieldHttpResponse } from './http-error.mapping.js';
export { ShieldExceptionFilter, ShieldRedactingExceptionFilter } from './shield-exception.filter.js';
export {
  assertKnownKeys,
  assertObject,
  assertString,
  assertBoolean,
  assertInteger,
  assertOneOf,
  assertStringArray,
  parseHttpsUrl,
  deepFreeze,
  describeValue,
} from './options.validation.js';
export {
  loadTlsBundle,
  loadCaBundle,
  readBoundedFile,
  type TlsFiles,
  sameTlsBundle,
  type TlsUsage,
  type LoadedTlsBundle,
  type LoadTlsBundleOptions,
} from './certificate.loader.js';
export {
  certificateFingerprint,
  spiffeIdOf,
  parseSpiffeId,
  subjectAltNames,
  type SpiffeId,
  type SubjectAltNames,
  type SubjectAltNameSource,
} from './certificate.inspect.js';
export { TlsBundleWatcher, type TlsBundleWatcherOptions } from './bundle.watcher.js';
export { tlsSocketOf } from './tls-socket.js';
