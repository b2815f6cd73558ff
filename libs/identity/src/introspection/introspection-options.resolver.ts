import {
  assertCaSource,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  copyCaSource,
  describeValue,
  parseHttpsUrl,
  type CaSource,
} from '@inference-shield/core/internal';
import type {
  ResolvedIntrospectionClientAuth,
  ResolvedIntrospectionOptions,
} from './introspection-options.interface.js';

const KEYS = [
  'endpoint',
  'clientId',
  'clientAuth',
  'ca',
  'timeoutMs',
  'maxCacheSeconds',
  'maxConcurrent',
] as const;
const AUTH_METHODS = ['private_key_jwt', 'tls_client_auth', 'client_secret_basic'] as const;
/** Algorithms a `private_key_jwt` assertion may use (asymmetric only: HS* would be a shared secret). */
export const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'EdDSA'];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses an issuer's `introspection` block once, at start-up: a bad field throws a `TypeError`
 * naming it. Pure: keys, certificates and secrets are read when the verifier is created.
 * `issuerCa` is the issuer's own `ca`, used when the block names none.
 */
export function resolveIntrospectionOptions(
  field: string,
  raw: unknown,
  issuerCa: CaSource | undefined,
): ResolvedIntrospectionOptions {
  assertKnownKeys(field, raw, KEYS);
  const url = parseHttpsUrl(`${field}.endpoint`, raw['endpoint']);
  // The token is POSTed in the body; nothing may ride in the URL (RFC 7662 §2.1, RFC 6749 §2.3.1).
  if (url.search || url.hash || url.username || url.password) {
    throw new TypeError(`"${field}.endpoint" must have no query, fragment or credentials`);
  }
  const clientId = raw['clientId'];
  assertString(`${field}.clientId`, clientId);
  if (clientId.length === 0 || clientId.length > 256) {
    throw new TypeError(`"${field}.clientId" must be 1 to 256 characters`);
  }
  let ca: CaSource | undefined = issuerCa;
  if (raw['ca'] !== undefined) {
    assertCaSource(`${field}.ca`, raw['ca']);
    ca = copyCaSource(raw['ca']);
  }
  const timeoutMs = raw['timeoutMs'] ?? 3000;
  assertInteger(`${field}.timeoutMs`, timeoutMs, 100, 30_000);
  const maxCacheSeconds = raw['maxCacheSeconds'] ?? 60;
  assertInteger(`${field}.maxCacheSeconds`, maxCacheSeconds, 0, 3600);
  const maxConcurrent = raw['maxConcurrent'] ?? 32;
  assertInteger(`${field}.maxConcurrent`, maxConcurrent, 1, 1024);
  return {
    endpoint: url.href,
    clientId,
    clientAuth: resolveClientAuth(`${field}.clientAuth`, raw['clientAuth']),
    ca,
    timeoutMs,
    maxCacheSeconds,
    maxConcurrent,
  };
}

function resolveClientAuth(field: string, raw: unknown): ResolvedIntrospectionClientAuth {
  assertObject(field, raw);
  const method = raw['method'];
  assertOneOf(`${field}.method`, method, AUTH_METHODS);
  switch (method) {
    case 'private_key_jwt': {
      assertKnownKeys(field, raw, ['method', 'key', 'alg', 'kid']);
      const key = keySourceOf(`${field}.key`, raw['key']);
      let alg: string | undefined;
      if (raw['alg'] !== undefined) {
        assertOneOf(`${field}.alg`, raw['alg'], ASSERTION_ALGORITHMS);
        alg = raw['alg'];
      }
      let kid: string | undefined;
      if (raw['kid'] !== undefined) {
        assertString(`${field}.kid`, raw['kid']);
        kid = raw['kid'];
      }
      return { method, key, alg, kid };
    }
    case 'tls_client_auth': {
      assertKnownKeys(field, raw, ['method', 'cert', 'key']);
      assertString(`${field}.cert`, raw['cert']);
      assertString(`${field}.key`, raw['key']);
      return { method, cert: raw['cert'], key: raw['key'] };
    }
    case 'client_secret_basic': {
      assertKnownKeys(field, raw, ['method', 'secret', 'allowClientSecret']);
      if (raw['allowClientSecret'] !== true) {
        throw new TypeError(
          `"${field}" uses a shared client secret: set "allowClientSecret: true" to accept it, or prefer "private_key_jwt" or "tls_client_auth"`,
        );
      }
      const secret = raw['secret'];
      if (typeof secret === 'string') {
        // A literal in the options ends up in source control and heap dumps.
        throw new TypeError(
          `"${field}.secret" must be { env: "NAME" } or { file: "/path" }, not the secret itself`,
        );
      }
      assertObject(`${field}.secret`, secret);
      if ('env' in secret) {
        assertKnownKeys(`${field}.secret`, secret, ['env']);
        const env = secret['env'];
        if (typeof env !== 'string' || !ENV_NAME.test(env)) {
          throw new TypeError(
            `"${field}.secret.env" must be an environment variable name, got ${describeValue(env)}`,
          );
        }
        return { method, secret: { env } };
      }
      assertKnownKeys(`${field}.secret`, secret, ['file']);
      assertString(`${field}.secret.file`, secret['file']);
      return { method, secret: { file: secret['file'] } };
    }
  }
}

function keySourceOf(field: string, raw: unknown): { file: string } | { pem: string } {
  assertObject(field, raw);
  const keys = Object.keys(raw);
  if (keys.length !== 1 || (keys[0] !== 'file' && keys[0] !== 'pem')) {
    throw new TypeError(`"${field}" must be { file: "<path>" } or { pem: "<PEM text>" }`);
  }
  const value = raw[keys[0]];
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`"${field}.${keys[0]}" must be a non-empty string`);
  }
  return keys[0] === 'file' ? { file: value } : { pem: value };
}
