/**
 * The oidc-provider configuration of the dev IdP: `client_credentials` only, RFC 9068 JWT access
 * tokens (`typ: at+jwt`) per RFC 8707 resource, ES256 keys from the persisted key set, RFC 8705
 * mutual-TLS client authentication and certificate-bound tokens read from the TLS socket, and
 * RFC 9449 DPoP-bound tokens for clients that send a DPoP proof.
 */
import { X509Certificate, createPublicKey, randomBytes } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import { parseSpiffeId, spiffeIdOf, subjectAltNames } from '@inference-shield/core/internal';
import type { ClientMetadata, Configuration, KoaContextWithOIDC, errors as OidcErrors } from 'oidc-provider';
import {
  DEV_IDP_AUTH_METHODS,
  type DevIdpClient,
  type DevIdpClientsConfig,
  type DevIdpResource,
} from './clients-config.js';
import { createMemoryAdapterFactory } from './memory.adapter.js';
import { renderJsonError } from './oauth-error-response.js';
import type { DevIdpPrivateJwks } from './signing-keys.js';

/** The certificate of the TLS peer, read from the socket: never from a header a proxy could forge. */
function peerCertificate(ctx: KoaContextWithOIDC): X509Certificate | undefined {
  const socket = ctx.req.socket;
  if (!(socket instanceof TLSSocket)) return undefined;
  return socket.getPeerX509Certificate();
}

/**
 * RFC 8705 2.1.2 `tls_client_auth_san_uri`: the certificate must carry the registered URI. A SPIFFE
 * ID counts only as the one identity of an X509-SVID: a certificate with two SPIFFE IDs matches none.
 */
function sanUriMatches(cert: X509Certificate, expected: string): boolean {
  if (parseSpiffeId(expected)) return spiffeIdOf(cert) === expected;
  return subjectAltNames(cert).uri.includes(expected);
}

function clientMetadata(client: DevIdpClient): ClientMetadata {
  const metadata: ClientMetadata = {
    client_id: client.clientId,
    token_endpoint_auth_method: client.auth,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: client.scopes.join(' '),
    // The key set is ES256 only; oidc-provider's RS256 default would find no key.
    id_token_signed_response_alg: 'ES256',
    tls_client_certificate_bound_access_tokens: client.certificateBoundAccessTokens,
  };
  if (client.clientSecret !== undefined) metadata.client_secret = client.clientSecret;
  if (client.tlsClientAuthSanUri !== undefined) metadata.tls_client_auth_san_uri = client.tlsClientAuthSanUri;
  if (client.selfSignedCertificatePem !== undefined) {
    // RFC 8705 2.2: the client registers its self-signed certificate (x5c) in its JWKS; the
    // provider matches the presented certificate by its SHA-256 thumbprint.
    const cert = new X509Certificate(client.selfSignedCertificatePem);
    const jwk = cert.publicKey.export({ format: 'jwk' });
    metadata.jwks = { keys: [{ ...jwk, x5c: [cert.raw.toString('base64')] }] };
  }
  if (client.publicKeyPem !== undefined) {
    // RFC 7523 2.2 (private_key_jwt): the key that checks the client's assertions.
    metadata.jwks = { keys: [createPublicKey(client.publicKeyPem).export({ format: 'jwk' })] };
  }
  return metadata;
}

/** What the provider needs to know beyond the clients file. */
export interface ProviderConfigInput {
  readonly clients: DevIdpClientsConfig;
  readonly keys: DevIdpPrivateJwks;
  /** oidc-provider's error classes (the module is loaded at start-up, see `loadOidcProvider`). */
  readonly errors: typeof OidcErrors;
}

/** Build the oidc-provider configuration. Pure apart from a random cookie key (cookies are unused). */
export function buildProviderConfiguration({ clients, keys, errors }: ProviderConfigInput): Configuration {
  const resources = new Map<string, DevIdpResource>(clients.resources.map((r) => [r.identifier, r]));
  const allowedScopes = new Map<string, ReadonlySet<string>>(
    clients.clients.map((c) => [c.clientId, new Set(c.scopes)]),
  );
  const allowedResources = new Map<string, ReadonlySet<string> | undefined>(
    clients.clients.map((c) => [c.clientId, c.resources ? new Set(c.resources) : undefined]),
  );
  const allScopes = [...new Set(clients.resources.flatMap((r) => r.scopes))];
  const introspectors = new Set(clients.clients.filter((c) => c.introspect).map((c) => c.clientId));

  return {
    clients: clients.clients.map(clientMetadata),
    clientAuthMethods: [...DEV_IDP_AUTH_METHODS],
    jwks: { keys: keys.keys.map((k) => ({ ...k })) },
    adapter: createMemoryAdapterFactory(),
    // The provider refuses a requested scope listed here that the client is not registered for.
    scopes: allScopes,
    claims: {},
    responseTypes: ['none'],
    // Every resource sets its own TTL; 300 s covers the case oidc-provider asks without one.
    ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300 },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // RFC 6749 5.2: token endpoint errors are a JSON object. oidc-provider renders an HTML page
    // instead for a client whose Accept header prefers text/html; the dev IdP has no pages.
    renderError: renderJsonError,
    enabledJWA: {
      idTokenSigningAlgValues: ['ES256'],
      userinfoSigningAlgValues: ['ES256'],
      introspectionSigningAlgValues: ['ES256'],
      authorizationSigningAlgValues: ['ES256'],
      dPoPSigningAlgValues: ['ES256', 'EdDSA', 'Ed25519', 'PS256'],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // RFC 9449: a token request carrying a DPoP proof gets a DPoP-bound token (`cnf.jkt`,
      // `token_type: DPoP`); a proof is single-use (no replay) at the token endpoint too.
      dPoP: { enabled: true, allowReplay: false },
      // RFC 7662: only the resource servers of the clients file (`introspect: true`) may ask.
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx, client) => introspectors.has(client.clientId),
      },
      // RFC 7009: a client revokes its own tokens (oidc-provider's default policy).
      revocation: { enabled: true },
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // RFC 8707 2: a request without `resource` gets the default resource, so the token is
        // still a JWT with an audience rather than an opaque token only the IdP understands.
        defaultResource: () => clients.defaultResource,
        getResourceServerInfo: (ctx, resourceIndicator, client) => {
          const resource = resources.get(resourceIndicator);
          if (!resource) throw new errors.InvalidTarget('unknown resource');
          // A client limited to some audiences gets no token for another (RFC 8707 2: invalid_target).
          const audiences = allowedResources.get(client.clientId);
          if (audiences !== undefined && !audiences.has(resource.identifier)) {
            throw new errors.InvalidTarget('resource not allowed for this client');
          }
          const allowed = allowedScopes.get(client.clientId) ?? new Set<string>();
          const requested = typeof ctx.oidc.params?.scope === 'string' ? ctx.oidc.params.scope : '';
          const scopes = requested.split(' ').filter(Boolean);
          if (scopes.length === 0) throw new errors.InvalidScope('scope is required', '');
          // oidc-provider would silently drop a scope the resource does not know; refuse it
          // instead, so a typo is an error and not a token missing a right.
          for (const scope of scopes) {
            if (!allowed.has(scope) || !resource.scopes.includes(scope)) {
              throw new errors.InvalidScope('requested scope is not allowed', scope);
            }
          }
          return {
            scope: resource.scopes.filter((s) => allowed.has(s)).join(' '),
            audience: resource.identifier,
            accessTokenTTL: resource.accessTokenTtlSeconds,
            ...(resource.accessTokenFormat === 'opaque'
              ? { accessTokenFormat: 'opaque' as const }
              : { accessTokenFormat: 'jwt' as const, jwt: { sign: { alg: 'ES256' as const } } }),
          };
        },
      },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: peerCertificate,
        // RFC 8705 2.1: a CA-issued client certificate counts only when the TLS layer verified
        // it against the dev CA (the server asks for a certificate but does not require one).
        certificateAuthorized: (ctx) => {
          const socket = ctx.req.socket;
          return socket instanceof TLSSocket && socket.authorized;
        },
        certificateSubjectMatches: (ctx, property, expected) => {
          if (property !== 'tls_client_auth_san_uri') return false;
          const cert = peerCertificate(ctx);
          return cert !== undefined && sanUriMatches(cert, expected);
        },
      },
    },
  };
}
