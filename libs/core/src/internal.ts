/**
 * `@inference-shield/core/internal`: the plumbing the other Inference Shield packages share
 * (option validation, certificate loading and watching, the error class). It loads no Nest
 * module, so Nest-free entries such as `@inference-shield/upstream/client` can use it.
 *
 * Not a public API: names here may change in any release. Applications import
 * `@inference-shield/core`.
 */
export { ERROR_CATALOGUE, isShieldErrorCode, type ShieldErrorCode } from './error-codes.js';
export { ShieldError, isShieldError, type ShieldErrorDetails } from './shield.error.js';
export {
  toHttpResponse,
  codeOf,
  type ChallengeParams,
  type ShieldHttpResponse,
} from './http-error.mapping.js';
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
export {
  certificateExpiries,
  observeCertificateExpiry,
  type CertificateExpiry,
  type CertificateMaterial,
  type CertificateRole,
} from './certificate.telemetry.js';
export { tlsSocketOf } from './tls-socket.js';
export {
  TLS12_CIPHERS,
  TLS13_CIPHERS,
  ECDH_CURVES,
  PQ_HYBRID_GROUP,
  PQ_ECDH_CURVES,
  cipherString,
  keyExchangeGroups,
  detectKeyExchangeGroups,
  describeKeyExchangeGroups,
  groupNames,
  type KeyExchangeGroups,
  type Tls12Cipher,
} from './tls-suites.js';
export { deadlineSignal, type DeadlineSignal } from './deadline-signal.js';
export { assertCaSource, loadCaSource, copyCaSource, type CaSource } from './ca-source.js';
export { parseCaPem, parseCertificatePem } from './certificate.loader.js';
export { DEV_SERVER_TLS_POLICY, refusePlaintext, type PlaintextGate } from './dev-server.policy.js';
export {
  takeTlsConnectionListener,
  tcpSocketUnder,
  parserAttached,
  responseOnSocket,
  interceptBody,
  letGateAnswerMissingHost,
  setParserLimits,
  type RequestListener,
} from './node-internals.js';
