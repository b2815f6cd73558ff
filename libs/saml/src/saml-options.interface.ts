import type { KeyObject, X509Certificate } from 'node:crypto';
import type { SamlAuditSink } from './saml-audit.js';
import type { SamlReplayCache } from './saml-replay-cache.js';
import type { SamlRequestStore } from './saml-request-store.js';

/** One rule of the attribute mapping: an attribute value that grants scopes and/or roles. */
export interface SamlClaimRule {
  /** The SAML attribute `Name`, e.g. `groups` or `http://schemas.microsoft.com/ws/2008/06/identity/claims/role`. */
  attribute: string;
  /** The attribute value that triggers the rule (exact, case-sensitive comparison). */
  equals: string;
  /** Scopes granted when the rule matches. */
  scopes?: string[];
  /** Roles granted when the rule matches. */
  roles?: string[];
}

/** How an IdP's attributes become scopes and roles in the local token. Unmapped attributes never reach it. */
export interface SamlClaimMapping {
  /** Scopes every principal of this IdP gets. Default none. */
  defaultScopes?: string[];
  /** Roles every principal of this IdP gets. Default none. */
  defaultRoles?: string[];
  /** Attribute rules, applied in order; their grants add up. */
  rules?: SamlClaimRule[];
}

/** One trusted SAML identity provider. */
export interface SamlIdentityProviderOptions {
  /** Short name used in `GET /saml/login?idp=<name>`: lowercase letters, digits and `-`, at most 32. */
  name: string;
  /** The IdP entity ID: the `Issuer` its responses and assertions must carry, compared exactly. */
  entityId: string;
  /** The IdP single sign-on URL for the HTTP-Redirect binding (`https:`). */
  ssoUrl: string;
  /**
   * The IdP signing certificates, pinned (PEM text). Only these verify signatures: a certificate
   * or key carried in the message's `KeyInfo` is never used. Several allow a key rollover.
   */
  signingCertificates?: string[];
  /** The same, as paths to PEM files read at start-up. At least one certificate in total. */
  signingCertificateFiles?: string[];
  /** Also require the `Response` itself to be signed (the assertion always must be). Default false. */
  requireSignedResponse?: boolean;
  /** Accept responses that answer no AuthnRequest of ours (IdP-initiated SSO). Default false. */
  allowIdpInitiated?: boolean;
  /** Accept this IdP's assertions at the RFC 7522 token endpoint. Default false. */
  allowBearerGrant?: boolean;
  /** NameID format requested in the AuthnRequest. Default `urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified`. */
  nameIdFormat?: string;
  /** Attribute → scopes/roles mapping. Default: no scopes, no roles. */
  claims?: SamlClaimMapping;
}

/** The short-lived access tokens this service issues after a verified SAML assertion. */
export interface SamlTokenOptions {
  /** `iss` of the tokens: this service's issuer URL (`https:`). Configure the same in `IdentityModule`. */
  issuer: string;
  /** `aud` of the tokens. */
  audience: string | string[];
  /** Token lifetime in seconds. Default 300, from 30 to 3600. */
  ttlSeconds?: number;
  /**
   * The ES256 (P-256) signing key: a PKCS#8 or SEC1 PEM file read at start-up, or `'ephemeral'`
   * for a key generated at each start (development only: tokens die with the process, and each
   * replica would hold its own key).
   */
  signingKey: { privateKeyFile: string } | 'ephemeral';
}

/** The RFC 7522 SAML 2.0 bearer assertion grant at `POST /oauth/token`. */
export interface SamlGrantOptions {
  /** The token endpoint URL (`https:`): the `Recipient` a grant assertion must name (RFC 7522 §3). */
  tokenEndpointUrl: string;
  /** The `Audience` a grant assertion must name. Default: the service provider `entityId`. */
  audience?: string;
}

/** Options of `SamlModule.forRoot()`. */
export interface SamlModuleOptions {
  /** This service as a SAML service provider. */
  serviceProvider: {
    /** Our SP entity ID: the `Issuer` of our AuthnRequests and the default `Audience`. */
    entityId: string;
    /** Our assertion consumer service URL (`https:`): `Destination` and `Recipient` must equal it. */
    acsUrl: string;
    /** The `Audience` browser SSO assertions must name. Default: `entityId`. */
    audience?: string;
  };
  /** The trusted IdPs; at least one. */
  identityProviders: SamlIdentityProviderOptions[];
  /** The local access tokens. */
  tokens: SamlTokenOptions;
  /** The RFC 7522 grant; omitted: `POST /oauth/token` refuses every request. */
  grant?: SamlGrantOptions;
  /** Clock skew allowed on every SAML time, in seconds. Default 60, at most 300. */
  clockSkewSeconds?: number;
  /** An assertion older than this (from its `IssueInstant`) is refused, in seconds. Default 600, at most 86400. */
  maxAssertionAgeSeconds?: number;
  /** Largest decoded SAML message, in bytes. Default 262144 (256 KiB), from 4096 to 1048576. */
  maxMessageBytes?: number;
  /** How long an AuthnRequest we sent stays answerable, in seconds. Default 600, from 60 to 3600. */
  loginRequestTtlSeconds?: number;
  /** Where used assertion IDs are kept. Default: in memory (one replica only; use Redis with several). */
  replayCache?: SamlReplayCache;
  /** Where pending AuthnRequest IDs are kept. Default: in memory (one replica only; use Redis with several). */
  requestStore?: SamlRequestStore;
  /** Capacity of each default in-memory store. Default 100000. */
  memoryStoreMaxEntries?: number;
  /** Where login decisions are recorded. Default: one JSON line per decision through Nest's `Logger`. */
  audit?: { sink?: SamlAuditSink };
}

/** A trusted IdP after validation. */
export interface ResolvedSamlIdentityProvider {
  readonly name: string;
  readonly entityId: string;
  readonly ssoUrl: string;
  /** PEM text of each pinned certificate, in configuration order. */
  readonly signingCertificatePems: readonly string[];
  /** The same, parsed (validity dates are checked on each message). */
  readonly signingCertificates: readonly X509Certificate[];
  readonly requireSignedResponse: boolean;
  readonly allowIdpInitiated: boolean;
  readonly allowBearerGrant: boolean;
  readonly nameIdFormat: string;
  readonly claims: {
    readonly defaultScopes: readonly string[];
    readonly defaultRoles: readonly string[];
    readonly rules: readonly Readonly<Required<SamlClaimRule>>[];
  };
}

/** {@link SamlModuleOptions} after `resolveSamlOptions`: checked, complete, frozen. */
export interface ResolvedSamlOptions {
  readonly serviceProvider: { readonly entityId: string; readonly acsUrl: string; readonly audience: string };
  readonly identityProviders: readonly ResolvedSamlIdentityProvider[];
  readonly tokens: {
    readonly issuer: string;
    readonly audience: readonly string[];
    readonly ttlSeconds: number;
    /** The loaded P-256 private key, or `'ephemeral'` (generated by `SamlTokenSigner.create`). */
    readonly signingKey: KeyObject | 'ephemeral';
  };
  readonly grant: { readonly tokenEndpointUrl: string; readonly audience: string } | undefined;
  readonly clockSkewMs: number;
  readonly maxAssertionAgeMs: number;
  readonly maxMessageBytes: number;
  readonly loginRequestTtlMs: number;
  readonly replayCache: SamlReplayCache;
  readonly requestStore: SamlRequestStore;
  readonly audit: { readonly sink: SamlAuditSink | undefined };
}
