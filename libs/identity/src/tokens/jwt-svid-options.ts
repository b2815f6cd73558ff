import type { JsonWebKey } from 'node:crypto';
import {
  assertInteger,
  assertKnownKeys,
  assertStringArray,
  describeValue,
  parseSpiffeId,
} from '@inference-shield/core/internal';
import type { ResolvedIssuerOptions } from './token-verifier-options.interface.js';

/**
 * Where the JWT bundles come from: `WorkloadApiSource` of `@inference-shield/spiffe`, connected
 * with `jwtBundles: true`, is one. Structural: identity does not depend on that package. Read on
 * every JWT-SVID, so a key the agent drops is refused at once.
 */
export interface JwtSvidBundleSource {
  jwtBundles(): ReadonlyMap<string, { readonly keys: readonly JsonWebKey[] }>;
}

/**
 * JWT-SVIDs (SPIFFE JWT-SVID §3) as a way in alongside OIDC: a token whose `sub` is a SPIFFE ID
 * of one of `trustDomains` (and whose `iss`, if any, is not a configured issuer) is checked with
 * the keys of that trust domain's JWT bundle, its `aud` against `audience`. It then reads as an
 * `oidc` token of issuer `spiffe://<trust domain>` (pin it with `oidc({ issuers: [...] })`), no
 * scopes, `sub` the caller's SPIFFE ID.
 */
export interface JwtSvidOptions {
  /** The JWT bundles, e.g. a `WorkloadApiSource` with `jwtBundles: true`. */
  bundles: JwtSvidBundleSource;
  /** Trust domains whose workloads are accepted (`example.org`, no `spiffe://`); at least one. */
  trustDomains: string[];
  /** Accepted `aud` values (JWT-SVID §3: the token must hold one); at least one. */
  audience: string | string[];
  /** Allowed JWS algorithms; default the JWT-SVID ones: RS/ES/PS 256, 384, 512. */
  algorithms?: string[];
  /** Clock skew allowed on `exp` and `iat`, in seconds. Default 5, at most 300. */
  clockToleranceSeconds?: number;
}

/** {@link JwtSvidOptions} resolved, with one issuer entry per trust domain. */
export interface ResolvedJwtSvidOptions {
  readonly bundles: JwtSvidBundleSource;
  readonly trustDomains: readonly string[];
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  readonly clockToleranceSeconds: number;
  /** What the token path needs of an issuer, per trust domain (issuer `spiffe://<td>`). */
  readonly issuers: ReadonlyMap<string, ResolvedIssuerOptions>;
}

/** JWT-SVID §3: the JWS algorithms a JWT-SVID may be signed with. */
export const JWT_SVID_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
];

/** Check `tokens.jwtSvids` once at start-up; a bad field is a TypeError naming it. */
export function resolveJwtSvidOptions(field: string, raw: unknown): ResolvedJwtSvidOptions {
  assertKnownKeys(field, raw, ['bundles', 'trustDomains', 'audience', 'algorithms', 'clockToleranceSeconds']);
  const bundles = raw['bundles'];
  if (
    typeof bundles !== 'object' ||
    bundles === null ||
    typeof (bundles as { jwtBundles?: unknown }).jwtBundles !== 'function'
  ) {
    throw new TypeError(
      `"${field}.bundles" must have jwtBundles() (a WorkloadApiSource with jwtBundles: true), got ${describeValue(bundles)}`,
    );
  }
  const trustDomains = raw['trustDomains'];
  assertStringArray(`${field}.trustDomains`, trustDomains, { nonEmpty: true });
  for (const td of trustDomains) {
    const parsed = parseSpiffeId(`spiffe://${td}`);
    if (parsed === undefined || parsed.path !== '' || parsed.trustDomain !== td) {
      throw new TypeError(
        `"${field}.trustDomains" must hold trust domain names such as example.org, got ${describeValue(td)}`,
      );
    }
  }
  const audienceRaw = raw['audience'];
  const audience = typeof audienceRaw === 'string' ? [audienceRaw] : audienceRaw;
  assertStringArray(`${field}.audience`, audience, { nonEmpty: true });
  const algorithms = raw['algorithms'] ?? JWT_SVID_ALGORITHMS;
  assertStringArray(`${field}.algorithms`, algorithms, { nonEmpty: true });
  for (const alg of algorithms) {
    if (!JWT_SVID_ALGORITHMS.includes(alg)) {
      throw new TypeError(
        `"${field}.algorithms" must be among ${JWT_SVID_ALGORITHMS.join(', ')}, got ${describeValue(alg)}`,
      );
    }
  }
  const clockToleranceSeconds = raw['clockToleranceSeconds'] ?? 5;
  assertInteger(`${field}.clockToleranceSeconds`, clockToleranceSeconds, 0, 300);
  const issuers = new Map<string, ResolvedIssuerOptions>();
  for (const td of new Set(trustDomains)) {
    issuers.set(
      td,
      Object.freeze({
        issuer: `spiffe://${td}`,
        audience: Object.freeze([...audience]),
        keySource: Object.freeze({ kind: 'none' as const }),
        algorithms: Object.freeze([...algorithms]),
        requireAccessTokenType: false,
        requireSenderConstrained: false,
        clockToleranceSeconds,
        method: 'oidc' as const,
        scopeClaim: 'scope',
        fetchTimeoutMs: 0,
        refetchCooldownMs: 0,
        maxKeyStalenessMs: 0,
        refreshIntervalMs: 0,
      }),
    );
  }
  return Object.freeze({
    bundles: bundles as JwtSvidBundleSource,
    trustDomains: Object.freeze([...new Set(trustDomains)]),
    audience: Object.freeze([...audience]),
    algorithms: Object.freeze([...algorithms]),
    clockToleranceSeconds,
    issuers,
  });
}
