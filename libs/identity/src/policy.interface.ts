/** How a caller proved who it is: a bearer token (OIDC issuer or SAML exchange) or a TLS client certificate. */
export type AuthMethod = 'oidc' | 'saml' | 'mtls';

/** The methods that arrive as a bearer access token. */
export type TokenMethod = 'oidc' | 'saml';

/** A value a claim must hold (scalar), or values a multi-valued claim must all contain (array). */
export type ClaimRequirement = string | number | boolean | readonly (string | number | boolean)[];

/**
 * What a bearer token must carry to pass one alternative. Every listed condition must hold (AND);
 * put several alternatives in `@Allow(...)` for OR.
 */
export interface TokenRequirement {
  /** Scopes the token must all carry (RFC 6749 §3.3); a missing one is a 403 `insufficient_scope`. */
  readonly scopes?: readonly string[];
  /** Roles the caller must all hold, read from the module's `roleClaimPath`. */
  readonly roles?: readonly string[];
  /** Claims (dotted paths) and the values they must hold. */
  readonly claims?: Readonly<Record<string, ClaimRequirement>>;
  /** Only tokens from these issuers (`iss`), when several are configured. */
  readonly issuers?: readonly string[];
  /** RFC 8705: the token must be bound (`cnf.x5t#S256`) to the live TLS client certificate. */
  readonly boundToken?: boolean;
  /** The token must be sender-constrained: DPoP-bound (RFC 9449) or certificate-bound (RFC 8705). */
  readonly senderConstrained?: boolean;
}

/**
 * Which verified client certificates pass one alternative. The lists are allow-lists joined by OR:
 * a caller passes when its SPIFFE ID, its trust domain or one of its SANs is listed. With no list,
 * any certificate the TLS layer verified (and the module's `mtls.trustDomains` accepted) passes.
 */
export interface MtlsRequirement {
  /** Exact SPIFFE IDs, e.g. `spiffe://shield.local/ns/prod/sa/gateway`. */
  readonly spiffeIds?: readonly string[];
  /** SPIFFE trust domains, e.g. `shield.local`: any workload of that domain. */
  readonly trustDomains?: readonly string[];
  /** Subject alternative names as `dns:name`, `uri:value`, `email:addr` or `ip:addr`. */
  readonly sans?: readonly string[];
}

/** One way to pass a route: a method and what it must satisfy. */
export type PolicyAlternative =
  | ({ readonly method: 'oidc' } & TokenRequirement)
  | ({ readonly method: 'saml' } & TokenRequirement)
  | ({ readonly method: 'mtls' } & MtlsRequirement);

/** What one policy decorator recorded on a handler or a class (merged when the routes are walked). */
export type PolicyFragment =
  | { readonly kind: 'public' }
  | { readonly kind: 'authenticated' }
  | { readonly kind: 'allow'; readonly alternatives: readonly PolicyAlternative[] }
  | { readonly kind: 'oidc'; readonly requirement: TokenRequirement }
  | { readonly kind: 'mtls'; readonly requirement: MtlsRequirement }
  | { readonly kind: 'passport'; readonly requirement: TokenRequirement };
