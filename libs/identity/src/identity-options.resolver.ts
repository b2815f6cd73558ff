import {
  assertBoolean,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  assertStringArray,
  describeValue,
} from '@inference-shield/core/internal';
import type { ShieldPrincipal } from './principal.interface.js';
import { resolveTokenVerifierOptions } from './tokens/index.js';
import { resolveResourceMetadataOptions } from './discovery/resource-metadata.resolver.js';
import { resolveDpopOptions } from './dpop/dpop-options.resolver.js';
import type { AuditSink } from './audit.interface.js';
import type {
  IdentityModuleOptions,
  ResolvedIdentityOptions,
  ResolvedPathRoutePolicy,
  ResolvedRoutePolicy,
} from './identity-options.interface.js';
import { fragmentsOf, type PolicyDecorator } from './policy.decorator.js';
import { parseClaimPath } from './claim-path.js';
import { isTrustDomain } from './spiffe-id.js';

/**
 * Validates `IdentityModule` options once, at start-up: unknown keys, bad values and a
 * configuration that could never authenticate anyone are `TypeError`s naming the field.
 */
export function resolveIdentityOptions(raw: unknown): ResolvedIdentityOptions {
  assertKnownKeys('IdentityModule options', raw, [
    'oidc',
    'mtls',
    'dpop',
    'audit',
    'roleClaimPath',
    'routePolicies',
    'user',
    'redactUnknownErrors',
    'resourceMetadata',
  ]);
  const options = raw as IdentityModuleOptions & Record<string, unknown>;
  if (options.oidc === undefined && options.mtls === undefined) {
    throw new TypeError(
      '"IdentityModule options" need "oidc" or "mtls": with neither, no caller could ever be authenticated',
    );
  }

  const oidc = options.oidc === undefined ? undefined : resolveTokenVerifierOptions(options.oidc, 'oidc');

  let mtls: ResolvedIdentityOptions['mtls'];
  if (options.mtls !== undefined) {
    assertKnownKeys('mtls', options.mtls, ['trustDomains']);
    let trustDomains: readonly string[] | undefined;
    if (options.mtls.trustDomains !== undefined) {
      const td: unknown = options.mtls.trustDomains;
      assertStringArray('mtls.trustDomains', td, { nonEmpty: true });
      for (const d of td) {
        if (!isTrustDomain(d)) {
          throw new TypeError(
            `"mtls.trustDomains" must hold SPIFFE trust domain names (lowercase a-z, 0-9, ".", "-", "_"), got ${describeValue(d)}`,
          );
        }
      }
      trustDomains = Object.freeze([...new Set(td)]);
    }
    mtls = Object.freeze({ trustDomains });
  }

  if (options.dpop !== undefined && oidc === undefined) {
    throw new TypeError('"dpop" needs "oidc": DPoP binds access tokens, and no issuer is configured');
  }
  const dpop = options.dpop === undefined ? undefined : resolveDpopOptions(options.dpop);

  let sink: AuditSink | undefined;
  let includePublic = false;
  if (options.audit !== undefined) {
    assertKnownKeys('audit', options.audit, ['sink', 'includePublic']);
    if (options.audit.sink !== undefined) {
      const s: unknown = options.audit.sink;
      assertObject('audit.sink', s);
      if (typeof s.record !== 'function') {
        throw new TypeError(`"audit.sink" must have a record(event) method, got ${describeValue(s.record)}`);
      }
      sink = s as unknown as AuditSink;
    }
    if (options.audit.includePublic !== undefined) {
      assertBoolean('audit.includePublic', options.audit.includePublic);
      includePublic = options.audit.includePublic;
    }
  }

  const roleClaimPath =
    options.roleClaimPath === undefined
      ? Object.freeze(['roles'])
      : parseClaimPath('roleClaimPath', options.roleClaimPath);

  let redactUnknownErrors = false;
  if (options.redactUnknownErrors !== undefined) {
    assertBoolean('redactUnknownErrors', options.redactUnknownErrors);
    redactUnknownErrors = options.redactUnknownErrors;
  }

  const resourceMetadata =
    options.resourceMetadata === undefined
      ? undefined
      : resolveResourceMetadataOptions(options.resourceMetadata, {
          oidc,
          mtls: mtls !== undefined,
          // RFC 9449 proofs this module accepts: `dpop_signing_alg_values_supported`.
          dpopAlgorithms: dpop?.algorithms,
        });

  return Object.freeze({
    oidc,
    mtls,
    dpop,
    audit: Object.freeze({ sink, includePublic }),
    roleClaimPath,
    routePolicies: resolveRoutePolicies(options.routePolicies),
    user: resolveUser(options.user),
    redactUnknownErrors,
    resourceMetadata,
  });
}

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'SEARCH', 'ALL'];
// A template as Nest route decorators write it; wildcards other than a final `/*` are refused.
const PATH_TEMPLATE =
  /^\/?(?:[A-Za-z0-9._~!$&'()+,;=@%-]+|:[A-Za-z_][A-Za-z0-9_]*)?(?:\/(?:[A-Za-z0-9._~!$&'()+,;=@%-]+|:[A-Za-z_][A-Za-z0-9_]*))*(?:\/\*)?$/;

function resolvePolicyList(field: string, value: unknown): ResolvedRoutePolicy['fragments'] {
  const list: readonly unknown[] = Array.isArray(value) ? value : [value];
  if (list.length === 0 || list.some((d) => typeof d !== 'function')) {
    throw new TypeError(
      `"${field}" must be a policy decorator (Public(), RequireScopes(...), Allow(...)...) or a non-empty array of them, got ${describeValue(value)}`,
    );
  }
  const fragments = fragmentsOf(list as PolicyDecorator[]);
  if (fragments.length < list.length) {
    throw new TypeError(`"${field}" holds a function that is not an Inference Shield policy decorator`);
  }
  // UsePassport() is a policy *and* ShieldPassportGuard on the route; from options only the policy
  // would arrive, and IdentityGuard leaves passport routes to a guard that would never run.
  if (fragments.some((f) => f.kind === 'passport')) {
    throw new TypeError(
      `"${field}": UsePassport() must decorate the route itself (it adds ShieldPassportGuard); use RequireScopes(...) or Allow(...) in options`,
    );
  }
  return fragments;
}

/** `routePolicies`: each entry is by path or by controller, never both; nothing else. */
function resolveRoutePolicies(raw: unknown): ResolvedIdentityOptions['routePolicies'] {
  const byPath: ResolvedPathRoutePolicy[] = [];
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- controller classes
  const byController = new Map<Function, ResolvedRoutePolicy>();
  if (raw !== undefined) {
    if (!Array.isArray(raw)) {
      throw new TypeError(`"routePolicies" must be an array, got ${describeValue(raw)}`);
    }
    raw.forEach((entry: unknown, i: number) => {
      const field = `routePolicies[${i}]`;
      assertObject(field, entry);
      if ('controller' in entry) {
        assertKnownKeys(field, entry, ['controller', 'policy']);
        const cls = entry['controller'];
        if (typeof cls !== 'function') {
          throw new TypeError(`"${field}.controller" must be a controller class, got ${describeValue(cls)}`);
        }
        if (byController.has(cls)) {
          throw new TypeError(`"${field}.controller" names ${cls.name} a second time`);
        }
        const label = `${field} (controller ${cls.name})`;
        byController.set(
          cls,
          Object.freeze({ label, fragments: resolvePolicyList(`${field}.policy`, entry['policy']) }),
        );
        return;
      }
      assertKnownKeys(field, entry, ['method', 'path', 'policy']);
      let method: string | undefined;
      if (entry['method'] !== undefined) {
        const m: unknown =
          typeof entry['method'] === 'string' ? entry['method'].toUpperCase() : entry['method'];
        assertOneOf(`${field}.method`, m, HTTP_METHODS);
        method = m === 'ALL' ? undefined : m;
      }
      const path: unknown = entry['path'];
      assertString(`${field}.path`, path);
      if (!PATH_TEMPLATE.test(path)) {
        throw new TypeError(
          `"${field}.path" must be a route path template such as "/health" or "/v1/models/:model/infer" (a final "/*" for everything below), got ${describeValue(path)}`,
        );
      }
      const prefix = path.endsWith('/*');
      const normal = `/${(prefix ? path.slice(0, -2) : path).replace(/^\/+|\/+$/g, '')}`;
      const label = `${field} (${method ?? 'ALL'} ${path})`;
      byPath.push(
        Object.freeze({
          label,
          method,
          path: normal,
          prefix,
          fragments: resolvePolicyList(`${field}.policy`, entry['policy']),
        }),
      );
    });
  }
  return Object.freeze({ byPath: Object.freeze(byPath), byController });
}

// Properties of a request that code and frameworks rely on: the user's result never replaces them.
const RESERVED_PROPERTIES = new Set([
  '__proto__',
  'constructor',
  'prototype',
  'headers',
  'body',
  'socket',
  'raw',
  'url',
  'method',
  'params',
  'query',
]);

function resolveUser(raw: unknown): ResolvedIdentityOptions['user'] {
  if (raw === undefined) return undefined;
  assertKnownKeys('user', raw, ['resolve', 'property']);
  const resolve = raw['resolve'];
  if (typeof resolve !== 'function') {
    throw new TypeError(
      `"user.resolve" must be a function (principal, request) => user, got ${describeValue(resolve)}`,
    );
  }
  let property = 'user';
  if (raw['property'] !== undefined) {
    const p: unknown = raw['property'];
    assertString('user.property', p);
    if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p) || RESERVED_PROPERTIES.has(p)) {
      throw new TypeError(
        `"user.property" must be an identifier that is not a request property frameworks use, got ${describeValue(p)}`,
      );
    }
    property = p;
  }
  return Object.freeze({
    resolve: resolve as (principal: ShieldPrincipal, request: object) => unknown,
    property,
  });
}
