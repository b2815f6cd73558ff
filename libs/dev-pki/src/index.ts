/**
 * @inference-shield/dev-pki: a throw-away ECDSA P-256 PKI for development and tests: a CA, server and
 * client (SPIFFE) certificates, CRLs, an idempotent PKI folder (`initDevPki`), and a set of good
 * and bad certificates for tests (`createTestPki`). Never for production keys.
 */
export {
  DevCertificateAuthority,
  DEFAULT_CA_DAYS,
  DEFAULT_LEAF_DAYS,
  type IssuedCertificate,
  type DevCaOptions,
  type DevLeafOptions,
  type DevServerOptions,
  type DevClientOptions,
  type DevCrlOptions,
  type DevExtendedKeyUsage,
} from './dev-certificate-authority.js';
export {
  initDevPki,
  devPkiLayout,
  DEFAULT_PKI_DIR,
  type DevPkiLayout,
  type DevPkiOptions,
  type DevPkiInitResult,
  type DevPkiFileReport,
} from './dev-pki.init.js';
export {
  createTestPki,
  TEST_TRUST_DOMAIN,
  TEST_CLIENT_SPIFFE_ID,
  type TestPki,
  type TestPkiPair,
  type TestPkiClient,
  type TestPkiAuthority,
} from './test-pki.js';
export { runDevPkiCli, type CliIo } from './dev-pki.cli.js';
