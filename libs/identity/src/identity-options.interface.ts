import type { AuditSink } from './audit.interface.js';
import type { ResolvedTokenVerifierOptions, TokenVerifierOptions } from './tokens/index.js';

/** Inbound mTLS callers (the TLS layer itself is configured by `@inference-shield/https`). */
export interface MtlsOptions {
  /**
   * SPIFFE trust domains accepted at all. A client certificate whose SPIFFE ID lies outside them
   * (or that has none) does not authenticate. Omitted: every certificate the TLS layer verified does.
   */
  readonly trustDomains?: readonly string[];
}

/** Where access decisions are recorded. */
export interface AuditOptions {
  /** Default: one JSON line per decision through Nest's `Logger` (context `ShieldAudit`). */
  readonly sink?: AuditSink;
  /** Also record requests to `@Public()` routes (default `false`: no identity is decided there). */
  readonly includePublic?: boolean;
}

/** Options of `IdentityModule.forRoot()`; at least one of `oidc` and `mtls` is required. */
export interface IdentityModuleOptions {
  /** Bearer access tokens: the issuers and their key sets (see the tokens section of the README). */
  readonly oidc?: TokenVerifierOptions;
  /** Callers authenticated by a verified TLS client certificate. */
  readonly mtls?: MtlsOptions;
  readonly audit?: AuditOptions;
  /** Dotted path of the roles claim read by `@RequireRoles()`, e.g. `realm_access.roles` (default `roles`). */
  readonly roleClaimPath?: string;
}

/** {@link IdentityModuleOptions} after validation: complete, frozen, parsed once at start-up. */
export interface ResolvedIdentityOptions {
  readonly oidc: ResolvedTokenVerifierOptions | undefined;
  readonly mtls: { readonly trustDomains: readonly string[] | undefined } | undefined;
  readonly audit: { readonly sink: AuditSink | undefined; readonly includePublic: boolean };
  readonly roleClaimPath: readonly string[];
}
