import type { CaSource } from '@inference-shield/core/internal';

/** Where a secret is read from at start-up (the value itself never appears in options). */
export type UpstreamCredentialSecretSource = { readonly env: string } | { readonly file: string };

/** A subject (or actor) token handed out by the workload's identity source, with its expiry. */
export interface UpstreamSubjectToken {
  /** The token, e.g. a JWT-SVID or an OIDC JWT. Never logged. */
  readonly token: string;
  /** When it stops being valid (a `Date` or epoch milliseconds); informative. */
  readonly expiresAt?: Date | number;
}

/**
 * Returns the workload's own identity token for an audience, e.g. a SPIFFE JWT-SVID from the
 * Workload API (`(aud) => source.jwtSvid(aud)`). Called once per exchange, never per request.
 */
export type UpstreamSubjectTokenProvider = (
  audience: string | undefined,
  signal: AbortSignal,
) => Promise<UpstreamSubjectToken>;

/**
 * The subject token of an RFC 8693 exchange: a file re-read when it changes (a Kubernetes
 * projected service-account token, a spiffe-helper JWT-SVID file), or a provider function.
 */
export type UpstreamSubjectTokenSource =
  { readonly file: string } | { readonly provider: UpstreamSubjectTokenProvider };

/**
 * On-behalf-of (RFC 8693 §1.1, delegation): the subject token is the inbound caller's own access
 * token, handed per call with `client.onBehalfOf(token, fn)`, and the workload proves itself with
 * `actorToken`. An explicit choice: the caller's token leaves this service for the token endpoint.
 */
export interface UpstreamCallerSubjectToken {
  readonly callerToken: true;
}

/**
 * How this service authenticates to the token endpoint. `private_key_jwt` (RFC 7523) and
 * `tls_client_auth` (RFC 8705: the upstream's client certificate, the key never leaves the TLS
 * stack) hold no shared secret. `client_secret_*` is an explicit opt-in for IdPs that offer
 * nothing else; the secret is sent in the body or the `Authorization` header, never in a URL.
 */
export type UpstreamClientAuthOptions =
  | {
      readonly method: 'private_key_jwt';
      readonly clientId: string;
      /** PKCS#8 PEM of an EC (P-256, P-384), RSA (2048+) or Ed25519 key. */
      readonly privateKeyFile: string;
      /** `kid` of the assertion header, as the IdP registered the key; default: none. */
      readonly kid?: string;
    }
  | { readonly method: 'tls_client_auth'; readonly clientId: string }
  | {
      readonly method: 'client_secret_basic' | 'client_secret_post';
      readonly clientId: string;
      readonly clientSecret: UpstreamCredentialSecretSource;
    };

/** What every token-endpoint credential shares. */
export interface UpstreamTokenEndpointOptions {
  /** The token endpoint, `https:` only, no query, fragment or credentials. */
  readonly tokenEndpoint: string;
  /** The authorization server's issuer (the `aud` of a client assertion); default: the endpoint's origin. */
  readonly issuer?: string;
  /** CAs trusted for the token endpoint (`{ file }` or `{ pem }`); default: the upstream's `ca`. */
  readonly ca?: CaSource;
  /** `scope` requested, space-separated. */
  readonly scope?: string;
  /** RFC 8693 `audience` (also the audience asked of a subject-token provider). */
  readonly audience?: string;
  /** RFC 8707 `resource`. */
  readonly resource?: string;
  /** Extra parameters the provider documents, e.g. OpenAI's `identity_provider_id`, `service_account_id`. */
  readonly parameters?: Readonly<Record<string, string>>;
  /** Request body: `form` (RFC 6749, default) or `json` (as OpenAI documents its exchange). */
  readonly encoding?: 'form' | 'json';
  /** Longest token request, connect included; default 10 000 ms. */
  readonly timeoutMs?: number;
}

/** OAuth 2.0 client credentials grant (RFC 6749 §4.4) at the IdP's token endpoint. */
export interface UpstreamClientCredentialsOptions extends UpstreamTokenEndpointOptions {
  readonly clientAuth: UpstreamClientAuthOptions;
}

/** The workload's own identity token exchanged for a provider token. */
export interface UpstreamTokenExchangeOptions extends UpstreamTokenEndpointOptions {
  /**
   * `token-exchange` (RFC 8693: `subject_token`, OpenAI, OpenRouter; default) or `jwt-bearer`
   * (RFC 7523 §2.1: the JWT as `assertion`, as Anthropic's workload identity federation wants).
   */
  readonly grant?: 'token-exchange' | 'jwt-bearer';
  /** The workload's identity token, or the caller's (`{ callerToken: true }`, needs `actorToken`). */
  readonly subjectToken: UpstreamSubjectTokenSource | UpstreamCallerSubjectToken;
  /** Default `urn:ietf:params:oauth:token-type:jwt` (`access_token` with `callerToken`). */
  readonly subjectTokenType?: string;
  /** An `actor_token` (RFC 8693 §4.1, delegation): the workload acting for the subject. */
  readonly actorToken?: UpstreamSubjectTokenSource;
  /** Default `urn:ietf:params:oauth:token-type:jwt`. */
  readonly actorTokenType?: string;
  /** Client authentication, when the token endpoint wants one; default: none (the subject token is the proof). */
  readonly clientAuth?: UpstreamClientAuthOptions;
}

/**
 * The client certificate itself as the credential: a token-exchange request on an mTLS connection
 * with no `subject_token` (OpenAI's X.509 workload identity federation). Needs the upstream's
 * `clientCertificate`; the same certificate authenticates the exchange and the API calls.
 */
export interface UpstreamCertificateExchangeOptions extends UpstreamTokenEndpointOptions {
  /** `client_id` to send, when the token endpoint wants one. */
  readonly clientId?: string;
}

/**
 * A keyless credential for an upstream: a short-lived access token obtained from a token
 * endpoint, cached, refreshed ahead of expiry, sent as `Authorization: Bearer`. Replaces `apiKey`.
 */
export type UpstreamCredentialOptions =
  | { readonly clientCredentials: UpstreamClientCredentialsOptions }
  | { readonly tokenExchange: UpstreamTokenExchangeOptions }
  | { readonly certificateExchange: UpstreamCertificateExchangeOptions };

/** Client authentication after parsing (secrets read, nothing else loaded). */
export type ResolvedClientAuth =
  | { readonly method: 'none'; readonly clientId?: string }
  | {
      readonly method: 'private_key_jwt';
      readonly clientId: string;
      readonly privateKeyFile: string;
      readonly kid?: string;
    }
  | { readonly method: 'tls_client_auth'; readonly clientId: string }
  | {
      readonly method: 'client_secret_basic' | 'client_secret_post';
      readonly clientId: string;
      /** Never logged, never in a URL. */
      readonly clientSecret: string;
    };

/** A subject or actor token source after parsing. */
export type ResolvedSubjectTokenSource =
  { readonly file: string } | { readonly provider: UpstreamSubjectTokenProvider };

/** One upstream's credential after parsing: frozen, checked at start-up. */
export interface ResolvedUpstreamCredential {
  readonly kind: 'clientCredentials' | 'tokenExchange' | 'certificateExchange';
  readonly tokenEndpoint: string;
  readonly issuer: string;
  readonly ca?: CaSource;
  readonly scope?: string;
  readonly audience?: string;
  readonly resource?: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly encoding: 'form' | 'json';
  readonly timeoutMs: number;
  readonly clientAuth: ResolvedClientAuth;
  /** Token exchange only: RFC 8693 or RFC 7523 grant. */
  readonly grant?: 'token-exchange' | 'jwt-bearer';
  readonly subjectToken?: ResolvedSubjectTokenSource | UpstreamCallerSubjectToken;
  readonly subjectTokenType?: string;
  readonly actorToken?: ResolvedSubjectTokenSource;
  readonly actorTokenType?: string;
  /**
   * True when the token endpoint sees the upstream's client certificate: it authenticates us
   * (`tls_client_auth`, certificate exchange), or the endpoint is on the upstream's own origin.
   */
  readonly presentsClientCertificate: boolean;
}
