import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  assertStringArray,
  deepFreeze,
  describeValue,
  parseHttpsUrl,
} from '@inference-shield/core/internal';
import { assertCaSource, copyCaSource, type CaSource } from '@inference-shield/core/internal';
import type { JWK } from 'jose';
import { resolveIntrospectionOptions } from '../introspection/introspection-options.resolver.js';
import { isSymmetricAlgorithm, SUPPORTED_ALGORITHMS } from './jws-inspect.js';
import { resolveJwtSvidOptions } from './jwt-svid-options.js';
import type {
  KeySource,
  ResolvedIssuerOptions,
  ResolvedTokenVerifierOptions,
} from './token-verifier-options.interface.js';

const VERIFIER_KEYS = [
  'issuers',
  'maxTokenBytes',
  'cacheMaxEntries',
  'startup',
  'opaqueTokenIssuer',
  'jwtSvids',
] as const;
const ISSUER_KEYS = [
  'issuer',
  'audience',
  'resource',
  'jwksUri',
  'jwks',
  'algorithms',
  'sharedSecret',
  'requireAccessTokenType',
  'requireSenderConstrained',
  'clockToleranceSeconds',
  'ca',
  'method',
  'scopeClaim',
  'fetchTimeoutMs',
  'refetchCooldownMs',
  'maxKeyStalenessMs',
  'refreshIntervalMs',
  'introspection',
] as const;

/** The algorithms an issuer with public keys accepts when `algorithms` is not given. */
export const DEFAULT_ASYMMETRIC_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

/** RFC 7518 §3.2: an HMAC key at least as long as the hash output. */
const MIN_SECRET_BYTES: Readonly<Record<'HS256' | 'HS384' | 'HS512', number>> = {
  HS256: 32,
  HS384: 48,
  HS512: 64,
};

/** Private JWK members (RFC 7518 §6): a key set must hold public keys only. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];
const MAX_INLINE_KEYS = 100;
const HOUR = 3_600_000;

/**
 * Parses raw token-verifier options once, at start-up: every field checked, every default filled
 * in, unknown keys refused, the result frozen. A bad field throws a `TypeError` naming it.
 * Pure: no I/O (key sets are loaded by `TokenVerifier.create`). `path` prefixes the field names
 * in messages when these options sit inside others (for example `"oidc"`).
 *
 * @example
 * const options = resolveTokenVerifierOptions({
 *   issuers: [{ issuer: 'https://idp.example', audience: 'https://api.example' }],
 * });
 */
export function resolveTokenVerifierOptions(raw: unknown, path?: string): ResolvedTokenVerifierOptions {
  const at = (field: string) => (path ? `${path}.${field}` : field);
  assertKnownKeys(path ?? 'tokens', raw, VERIFIER_KEYS);
  const issuersRaw = raw['issuers'];
  const jwtSvids =
    raw['jwtSvids'] !== undefined ? resolveJwtSvidOptions(at('jwtSvids'), raw['jwtSvids']) : undefined;
  if (!Array.isArray(issuersRaw) || (issuersRaw.length === 0 && jwtSvids === undefined)) {
    throw new TypeError(`"${at('issuers')}" must be a non-empty array, got ${describeValue(issuersRaw)}`);
  }
  const issuers = issuersRaw.map((value, i) => resolveIssuer(at(`issuers[${i}]`), value));
  const seen = new Set<string>();
  for (const [i, { issuer }] of issuers.entries()) {
    if (seen.has(issuer))
      throw new TypeError(`"${at(`issuers[${i}]`)}.issuer" repeats ${JSON.stringify(issuer)}`);
    seen.add(issuer);
  }

  const maxTokenBytes = raw['maxTokenBytes'] ?? 8192;
  assertInteger(at('maxTokenBytes'), maxTokenBytes, 512, 65_536);
  const cacheMaxEntries = raw['cacheMaxEntries'] ?? 10_000;
  assertInteger(at('cacheMaxEntries'), cacheMaxEntries, 0, 1_000_000);
  const startup = raw['startup'] ?? 'fail';
  assertOneOf(at('startup'), startup, ['fail', 'not-ready'] as const);

  let opaqueTokenIssuer: string | undefined;
  if (raw['opaqueTokenIssuer'] !== undefined) {
    const name: unknown = raw['opaqueTokenIssuer'];
    assertString(at('opaqueTokenIssuer'), name);
    const named = issuers.find((i) => i.issuer === name);
    if (named?.introspection === undefined) {
      throw new TypeError(
        `"${at('opaqueTokenIssuer')}" must name a configured issuer that has "introspection", got ${describeValue(name)}`,
      );
    }
    opaqueTokenIssuer = name;
  }

  return deepFreeze({
    issuers,
    maxTokenBytes,
    cacheMaxEntries,
    startup,
    ...(opaqueTokenIssuer !== undefined ? { opaqueTokenIssuer } : {}),
    ...(jwtSvids !== undefined ? { jwtSvids } : {}),
  });
}

function resolveIssuer(field: string, raw: unknown): ResolvedIssuerOptions {
  assertKnownKeys(field, raw, ISSUER_KEYS);
  const issuerUrl = parseHttpsUrl(`${field}.issuer`, raw['issuer']);
  // RFC 8414 §2: an issuer identifier has no query and no fragment.
  if (issuerUrl.search) throw new TypeError(`"${field}.issuer" must not have a query component`);
  const issuer = raw['issuer'] as string;

  const audienceRaw = raw['audience'];
  let audience: string[] = [];
  if (typeof audienceRaw === 'string') {
    assertString(`${field}.audience`, audienceRaw);
    audience = [audienceRaw];
  } else if (audienceRaw !== undefined || raw['resource'] === undefined) {
    assertStringArray(`${field}.audience`, audienceRaw, { nonEmpty: true });
    audience = [...audienceRaw];
  }
  if (raw['resource'] !== undefined) {
    // RFC 8707 §2: an absolute URI without fragment; compared with `aud` as the exact string written.
    const resource = parseHttpsUrl(`${field}.resource`, raw['resource']);
    if (resource.hash) throw new TypeError(`"${field}.resource" must not have a fragment`);
    const written = raw['resource'] as string;
    if (!audience.includes(written)) audience.push(written);
  }

  const sharedSecret = resolveSecret(`${field}.sharedSecret`, raw['sharedSecret']);

  let keySource: KeySource;
  if (raw['jwks'] !== undefined && raw['jwksUri'] !== undefined) {
    throw new TypeError(`"${field}" must not set both "jwks" and "jwksUri"`);
  }
  if (raw['jwks'] !== undefined) {
    keySource = { kind: 'inline', jwks: resolveInlineJwks(`${field}.jwks`, raw['jwks']) };
  } else if (raw['jwksUri'] !== undefined) {
    keySource = { kind: 'jwks-uri', jwksUri: parseHttpsUrl(`${field}.jwksUri`, raw['jwksUri']).href };
  } else if (sharedSecret !== undefined) {
    // An issuer with only a shared secret has no public keys to discover.
    keySource = { kind: 'none' };
  } else {
    // OpenID Connect Discovery 1.0 §4 (kept by RFC 8414 §5): the issuer, without a trailing
    // slash, followed by the well-known path.
    keySource = {
      kind: 'discovery',
      discoveryUrl: `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
    };
  }

  const algorithms = resolveAlgorithms(`${field}.algorithms`, raw['algorithms'], keySource, sharedSecret);

  const requireAccessTokenType = raw['requireAccessTokenType'] ?? false;
  assertBoolean(`${field}.requireAccessTokenType`, requireAccessTokenType);
  const requireSenderConstrained = raw['requireSenderConstrained'] ?? false;
  assertBoolean(`${field}.requireSenderConstrained`, requireSenderConstrained);
  const clockToleranceSeconds = raw['clockToleranceSeconds'] ?? 5;
  assertInteger(`${field}.clockToleranceSeconds`, clockToleranceSeconds, 0, 300);

  let ca: CaSource | undefined;
  if (raw['ca'] !== undefined) {
    if (keySource.kind === 'inline' || keySource.kind === 'none') {
      throw new TypeError(`"${field}.ca" is only used to fetch keys, and this issuer fetches none`);
    }
    // The shape every package takes (core's check); the file or PEM is read and parsed when the
    // verifier is created (TokenVerifier.create), so a bad bundle stops app.init().
    assertCaSource(`${field}.ca`, raw['ca']);
    ca = copyCaSource(raw['ca']);
  }

  const method = raw['method'] ?? 'oidc';
  assertOneOf(`${field}.method`, method, ['oidc', 'saml'] as const);
  const scopeClaim = raw['scopeClaim'] ?? 'scope';
  assertString(`${field}.scopeClaim`, scopeClaim);
  const fetchTimeoutMs = raw['fetchTimeoutMs'] ?? 5000;
  assertInteger(`${field}.fetchTimeoutMs`, fetchTimeoutMs, 100, 60_000);
  const refetchCooldownMs = raw['refetchCooldownMs'] ?? 30_000;
  assertInteger(`${field}.refetchCooldownMs`, refetchCooldownMs, 100, HOUR);
  const refreshIntervalMs = raw['refreshIntervalMs'] ?? 10 * 60_000;
  assertInteger(`${field}.refreshIntervalMs`, refreshIntervalMs, 1000, 24 * HOUR);
  const maxKeyStalenessMs = raw['maxKeyStalenessMs'] ?? 24 * HOUR;
  assertInteger(`${field}.maxKeyStalenessMs`, maxKeyStalenessMs, refreshIntervalMs, 7 * 24 * HOUR);

  const introspection =
    raw['introspection'] === undefined
      ? undefined
      : resolveIntrospectionOptions(`${field}.introspection`, raw['introspection'], ca);

  const resolved: ResolvedIssuerOptions = {
    issuer,
    audience,
    keySource,
    algorithms,
    requireAccessTokenType,
    requireSenderConstrained,
    clockToleranceSeconds,
    method,
    scopeClaim,
    fetchTimeoutMs,
    refetchCooldownMs,
    maxKeyStalenessMs,
    refreshIntervalMs,
    ...(sharedSecret !== undefined ? { sharedSecret } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(introspection !== undefined ? { introspection } : {}),
  };
  return resolved;
}

function resolveSecret(field: string, value: unknown): Uint8Array | undefined {
  if (value === undefined) return undefined;
  let bytes: Uint8Array;
  if (typeof value === 'string') bytes = new Uint8Array(Buffer.from(value, 'utf8'));
  else if (value instanceof Uint8Array)
    bytes = new Uint8Array(value); // a copy the caller cannot change
  else throw new TypeError(`"${field}" must be a string or a Uint8Array, got ${describeValue(value)}`);
  if (bytes.length < MIN_SECRET_BYTES.HS256) {
    // Never print the secret, not even its beginning.
    throw new TypeError(`"${field}" must be at least 32 bytes, got ${bytes.length}`);
  }
  return bytes;
}

function resolveAlgorithms(
  field: string,
  value: unknown,
  keySource: KeySource,
  secret: Uint8Array | undefined,
): string[] {
  const hasPublicKeys = keySource.kind !== 'none';
  let algorithms: string[];
  if (value === undefined) {
    algorithms = hasPublicKeys ? [...DEFAULT_ASYMMETRIC_ALGORITHMS] : [];
    if (secret) {
      for (const alg of ['HS256', 'HS384', 'HS512'] as const) {
        if (secret.length >= MIN_SECRET_BYTES[alg]) algorithms.push(alg);
      }
    }
  } else {
    assertStringArray(field, value, { nonEmpty: true });
    algorithms = [...new Set(value)];
  }
  for (const alg of algorithms) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new TypeError(
        `"${field}" holds ${JSON.stringify(alg)}, which is not supported; supported: ${SUPPORTED_ALGORITHMS.join(', ')}`,
      );
    }
    if (isSymmetricAlgorithm(alg)) {
      // RS/ES → HS key confusion needs HS* to be allowed with a public key as the secret: HS*
      // exists only with an explicit shared secret, and never uses the key set.
      if (!secret) throw new TypeError(`"${field}" holds ${alg}, which needs "sharedSecret"`);
      if (secret.length < MIN_SECRET_BYTES[alg]) {
        throw new TypeError(
          `"${field}" holds ${alg}, which needs a shared secret of ${MIN_SECRET_BYTES[alg]} bytes`,
        );
      }
    } else if (!hasPublicKeys) {
      throw new TypeError(`"${field}" holds ${alg}, which needs "jwks" or "jwksUri"`);
    }
  }
  if (algorithms.length === 0) throw new TypeError(`"${field}" must not be empty`);
  return algorithms;
}

function resolveInlineJwks(field: string, value: unknown): { keys: JWK[] } {
  assertKnownKeys(field, value, ['keys']);
  const keys = value['keys'];
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_INLINE_KEYS) {
    throw new TypeError(
      `"${field}.keys" must be an array of 1 to ${MAX_INLINE_KEYS} keys, got ${describeValue(keys)}`,
    );
  }
  return {
    keys: keys.map((key: unknown, i) => {
      assertObject(`${field}.keys[${i}]`, key);
      assertString(`${field}.keys[${i}].kty`, key['kty']);
      for (const member of PRIVATE_JWK_MEMBERS) {
        if (Object.hasOwn(key, member)) {
          throw new TypeError(`"${field}.keys[${i}]" must be a public key; it has "${member}"`);
        }
      }
      return structuredClone(key) as JWK;
    }),
  };
}
