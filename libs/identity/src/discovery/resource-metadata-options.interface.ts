/**
 * RFC 9728 OAuth 2.0 Protected Resource Metadata, served by `IdentityModule` at
 * `/.well-known/oauth-protected-resource` (plus the resource's path, §3.1) when configured, and
 * named in every `WWW-Authenticate` challenge (`resource_metadata`, §5.1).
 *
 * @example
 * resourceMetadata: {
 *   resource: 'https://models.example.com/mcp',
 *   scopesSupported: ['models:infer'],
 * }
 */
export interface ResourceMetadataOptions {
  /**
   * The resource identifier: the `https:` URL clients reach this service at (no query, no
   * fragment), exactly as they will compare it (RFC 9728 §3.3). At least one `oidc` issuer must
   * accept it as `aud` (state it there as `resource`), or its tokens would all be refused.
   */
  readonly resource: string;
  /**
   * `authorization_servers`: issuer identifiers clients may get tokens from. Default: every `oidc`
   * issuer that accepts `resource` as audience.
   */
  readonly authorizationServers?: readonly string[];
  /** `scopes_supported`, when you want to advertise them (MCP clients request these). */
  readonly scopesSupported?: readonly string[];
  /** `resource_name`, a human-readable name. */
  readonly resourceName?: string;
  /** `resource_documentation`, an `https:` URL. */
  readonly resourceDocumentation?: string;
  /**
   * `tls_client_certificate_bound_access_tokens` (RFC 8705). Default: true when the module has
   * `mtls` (client certificates are verified, so bound tokens can be checked).
   */
  readonly certificateBoundAccessTokens?: boolean;
  /** `Cache-Control: max-age` of the document, in seconds. Default 3600 (0 to 86400). */
  readonly maxAgeSeconds?: number;
  /**
   * RFC 9728 §2.2: also serve the metadata as a `signed_metadata` JWT, signed with this key (its
   * `iss` is `issuer`: the party that vouches for the metadata, whose keys clients must know).
   */
  readonly signed?: {
    readonly issuer: string;
    /** The private key, PEM: `{ file }` or `{ pem }`. Read at start-up. */
    readonly key: { readonly file: string } | { readonly pem: string };
    /** Default: ES256 / ES384 / ES512 for EC keys, EdDSA for Ed25519, PS256 for RSA. */
    readonly alg?: string;
    readonly kid?: string;
  };
}

/** {@link ResourceMetadataOptions} after validation: the document (unsigned) and where it is served. */
export interface ResolvedResourceMetadataOptions {
  /** The metadata URL, for `resource_metadata="..."` in challenges. */
  readonly url: string;
  /** The path it is served at: `/.well-known/oauth-protected-resource[/<resource path>]`. */
  readonly path: string;
  readonly maxAgeSeconds: number;
  /** The RFC 9728 §2 members, in the order they are written. */
  readonly document: Readonly<Record<string, unknown>>;
  readonly signed:
    | {
        readonly issuer: string;
        readonly key: { readonly file: string } | { readonly pem: string };
        readonly alg: string | undefined;
        readonly kid: string | undefined;
      }
    | undefined;
}
