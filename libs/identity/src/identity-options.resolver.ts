import {
  assertBoolean,
  assertKnownKeys,
  assertObject,
  assertStringArray,
  describeValue,
} from '@inference-shield/core';
import { resolveTokenVerifierOptions } from './tokens/index.js';
import type { AuditSink } from './audit.interface.js';
import type { IdentityModuleOptions, ResolvedIdentityOptions } from './identity-options.interface.js';
import { parseClaimPath } from './claim-path.js';
import { isTrustDomain } from './spiffe-id.js';

/**
 * Validates `IdentityModule` options once, at start-up: unknown keys, bad values and a
 * configuration that could never authenticate anyone are `TypeError`s naming the field.
 */
export function resolveIdentityOptions(raw: unknown): ResolvedIdentityOptions {
  assertKnownKeys('IdentityModule options', raw, ['oidc', 'mtls', 'audit', 'roleClaimPath']);
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

  return Object.freeze({
    oidc,
    mtls,
    audit: Object.freeze({ sink, includePublic }),
    roleClaimPath,
  });
}
