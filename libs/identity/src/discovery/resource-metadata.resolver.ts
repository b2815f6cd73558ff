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
import { ASSERTION_ALGORITHMS } from '../introspection/introspection-options.resolver.js';
import type { ResolvedTokenVerifierOptions } from '../tokens/token-verifier-options.interface.js';
import type { ResolvedResourceMetadataOptions } from './resource-metadata-options.interface.js';

const KEYS = [
  'resource',
  'authorizationServers',
  'scopesSupported',
  'resourceName',
  'resourceDocumentation',
  'certificateBoundAccessTokens',
  'maxAgeSeconds',
  'signed',
] as const;

/** RFC 9728 §3: the well-known suffix. */
export const RESOURCE_METADATA_WELL_KNOWN = '/.well-known/oauth-protected-resource';
// RFC 6749 §3.3 scope-token.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** What the document derives from the rest of the identity options. */
export interface ResourceMetadataContext {
  readonly oidc: ResolvedTokenVerifierOptions | undefined;
  /** The module verifies client certificates (`mtls` configured). */
  readonly mtls: boolean;
  /**
   * DPOP HOOK: the DPoP proof algorithms the module accepts (RFC 9449), written as
   * `dpop_signing_alg_values_supported`; `undefined` while DPoP is not configured.
   */
  readonly dpopAlgorithms: readonly string[] | undefined;
}

/**
 * Parses `resourceMetadata` once, at start-up, into the RFC 9728 document and where it is
 * served. A bad field throws a `TypeError` naming it (`resourceMetadata.resource`, ...).
 */
export function resolveResourceMetadataOptions(
  raw: unknown,
  ctx: ResourceMetadataContext,
): ResolvedResourceMetadataOptions {
  const field = 'resourceMetadata';
  assertKnownKeys(field, raw, KEYS);
  const resourceUrl = parseHttpsUrl(`${field}.resource`, raw['resource']);
  // RFC 9728 §1.2: a URL with no fragment; a query is allowed by the RFC but clients compare the
  // string whole, and a query would be dropped building the well-known URL: refused.
  if (resourceUrl.hash || resourceUrl.search || resourceUrl.username || resourceUrl.password) {
    throw new TypeError(`"${field}.resource" must have no query, fragment or credentials`);
  }
  const resource = raw['resource'] as string;
  const issuers = ctx.oidc?.issuers ?? [];
  const accepting = issuers.filter((i) => i.audience.includes(resource)).map((i) => i.issuer);
  if (accepting.length === 0) {
    throw new TypeError(
      `"${field}.resource" (${resource}) is not accepted as audience by any "oidc" issuer: state it there as "resource" (RFC 8707)`,
    );
  }

  let authorizationServers: string[] = accepting;
  if (raw['authorizationServers'] !== undefined) {
    const list: unknown = raw['authorizationServers'];
    assertStringArray(`${field}.authorizationServers`, list, { nonEmpty: true });
    for (const [i, server] of list.entries()) {
      if (!issuers.some((issuer) => issuer.issuer === server)) {
        throw new TypeError(
          `"${field}.authorizationServers[${i}]" must be a configured "oidc" issuer, got ${describeValue(server)}`,
        );
      }
    }
    authorizationServers = [...new Set(list)];
  }

  let scopesSupported: string[] | undefined;
  if (raw['scopesSupported'] !== undefined) {
    const scopes: unknown = raw['scopesSupported'];
    assertStringArray(`${field}.scopesSupported`, scopes, { nonEmpty: true });
    for (const scope of scopes) {
      if (!SCOPE_TOKEN.test(scope)) {
        throw new TypeError(`"${field}.scopesSupported" holds an invalid scope ${describeValue(scope)}`);
      }
    }
    scopesSupported = [...new Set(scopes)];
  }
  let resourceName: string | undefined;
  if (raw['resourceName'] !== undefined) {
    assertString(`${field}.resourceName`, raw['resourceName']);
    resourceName = raw['resourceName'];
  }
  let resourceDocumentation: string | undefined;
  if (raw['resourceDocumentation'] !== undefined) {
    resourceDocumentation = parseHttpsUrl(
      `${field}.resourceDocumentation`,
      raw['resourceDocumentation'],
    ).href;
  }
  const bound = raw['certificateBoundAccessTokens'] ?? ctx.mtls;
  assertBoolean(`${field}.certificateBoundAccessTokens`, bound);
  const maxAgeSeconds = raw['maxAgeSeconds'] ?? 3600;
  assertInteger(`${field}.maxAgeSeconds`, maxAgeSeconds, 0, 86_400);

  let signed: ResolvedResourceMetadataOptions['signed'];
  if (raw['signed'] !== undefined) {
    const s: unknown = raw['signed'];
    assertKnownKeys(`${field}.signed`, s, ['issuer', 'key', 'alg', 'kid']);
    const issuer = parseHttpsUrl(`${field}.signed.issuer`, s['issuer']);
    if (issuer.search || issuer.hash) {
      throw new TypeError(`"${field}.signed.issuer" must have no query and no fragment`);
    }
    const key: unknown = s['key'];
    assertObject(`${field}.signed.key`, key);
    const which = Object.keys(key);
    const value = which.length === 1 ? key[which[0] ?? ''] : undefined;
    if ((which[0] !== 'file' && which[0] !== 'pem') || typeof value !== 'string' || value.length === 0) {
      throw new TypeError(`"${field}.signed.key" must be { file: "<path>" } or { pem: "<PEM text>" }`);
    }
    let alg: string | undefined;
    if (s['alg'] !== undefined) {
      assertOneOf(`${field}.signed.alg`, s['alg'], ASSERTION_ALGORITHMS);
      alg = s['alg'];
    }
    let kid: string | undefined;
    if (s['kid'] !== undefined) {
      assertString(`${field}.signed.kid`, s['kid']);
      kid = s['kid'];
    }
    signed = {
      issuer: s['issuer'] as string,
      key: which[0] === 'file' ? { file: value } : { pem: value },
      alg,
      kid,
    };
  }

  // RFC 9728 §3.1: the well-known string goes between the host and the path of the resource.
  const resourcePath = resourceUrl.pathname === '/' ? '' : resourceUrl.pathname.replace(/\/$/, '');
  const path = `${RESOURCE_METADATA_WELL_KNOWN}${resourcePath}`;
  const document: Record<string, unknown> = {
    resource,
    authorization_servers: authorizationServers,
    // RFC 6750 §2.1 only: the token is never read from a body or a query string.
    bearer_methods_supported: ['header'],
    ...(scopesSupported !== undefined ? { scopes_supported: scopesSupported } : {}),
    ...(ctx.dpopAlgorithms !== undefined
      ? { dpop_signing_alg_values_supported: [...ctx.dpopAlgorithms] }
      : {}),
    tls_client_certificate_bound_access_tokens: bound,
    ...(resourceName !== undefined ? { resource_name: resourceName } : {}),
    ...(resourceDocumentation !== undefined ? { resource_documentation: resourceDocumentation } : {}),
  };
  return deepFreeze({
    url: `${resourceUrl.origin}${path}`,
    path,
    maxAgeSeconds,
    document,
    signed,
  });
}
