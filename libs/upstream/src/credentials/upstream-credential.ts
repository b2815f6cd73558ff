import { loadCaSource, type ShieldError } from '@inference-shield/core/internal';
import type { ResolvedUpstreamCredential } from './credential-options.interface.js';
import { GRANT_TYPE_JWT_BEARER, GRANT_TYPE_TOKEN_EXCHANGE } from './credential-options.resolver.js';
import { RefreshingToken, type CredentialStats } from './refreshing-token.js';
import { subjectTokenReader, type SubjectTokenReader } from './subject-token.js';
import { loadClientAuth, TokenEndpoint, type TokenEndpointTls } from './token-endpoint.js';

/** Hooks of an {@link UpstreamCredential}. */
export interface UpstreamCredentialHooks {
  /** A refresh failed while the current token stays in use (log the code, never a token). */
  onRefreshError?: (err: ShieldError) => void;
}

/**
 * The keyless credential of one upstream: a short-lived access token from a token endpoint
 * (client credentials, token exchange, or certificate exchange), cached and refreshed ahead of
 * expiry, handed to each request as an `Authorization` value. Tokens are never logged.
 */
export class UpstreamCredential {
  private readonly token: RefreshingToken;

  private constructor(
    private readonly presentsClientCertificate: boolean,
    private readonly endpoint: TokenEndpoint,
    private readonly staticCa: Buffer | undefined,
    grant: (signal: AbortSignal) => Promise<{ accessToken: string; expiresInSeconds: number }>,
    timeoutMs: number,
    hooks: UpstreamCredentialHooks,
  ) {
    this.token = new RefreshingToken({
      fetch: grant,
      timeoutMs,
      ...(hooks.onRefreshError !== undefined ? { onRefreshError: hooks.onRefreshError } : {}),
    });
  }

  /**
   * Load what the credential needs (a client assertion key, the token endpoint's CA) and build its
   * connection pool; a bad file is a `TypeError` or `ShieldError` naming it. No token is asked for
   * yet: the first request does, so an app starts while its token endpoint is briefly away.
   */
  static async create(
    upstream: string,
    credential: ResolvedUpstreamCredential,
    tls: TokenEndpointTls,
    connectMs: number,
    hooks: UpstreamCredentialHooks = {},
  ): Promise<UpstreamCredential> {
    const field = `upstreams.${upstream}.credential.${credential.kind}`;
    const clientAuth = await loadClientAuth(`${field}.clientAuth`, credential.clientAuth);
    const staticCa = credential.ca !== undefined ? loadCaSource(`${field}.ca`, credential.ca) : undefined;
    const endpoint = new TokenEndpoint(credential, clientAuth, withCa(tls, staticCa), connectMs);
    let grant: (signal: AbortSignal) => ReturnType<TokenEndpoint['request']>;
    if (credential.kind === 'clientCredentials') {
      grant = (signal) => endpoint.request('client_credentials', {}, signal);
    } else if (credential.kind === 'certificateExchange') {
      // OpenAI's X.509 flow: the certificate on this mTLS connection is the subject; no subject_token.
      grant = (signal) => endpoint.request(GRANT_TYPE_TOKEN_EXCHANGE, {}, signal);
    } else {
      const subject = reader(credential, 'subjectToken');
      const actor =
        credential.actorToken !== undefined
          ? subjectTokenReader(credential.actorToken, 'actor token')
          : undefined;
      grant = async (signal) => {
        if (credential.grant === 'jwt-bearer') {
          const assertion = await subject.read(credential.audience, signal);
          return endpoint.request(GRANT_TYPE_JWT_BEARER, { assertion }, signal);
        }
        const params: Record<string, string> = {
          subject_token: await subject.read(credential.audience, signal),
          subject_token_type: credential.subjectTokenType ?? '',
        };
        if (actor !== undefined) {
          params.actor_token = await actor.read(credential.audience, signal);
          params.actor_token_type = credential.actorTokenType ?? '';
        }
        return endpoint.request(GRANT_TYPE_TOKEN_EXCHANGE, params, signal);
      };
    }
    return new UpstreamCredential(
      credential.presentsClientCertificate,
      endpoint,
      staticCa,
      grant,
      credential.timeoutMs,
      hooks,
    );
  }

  /**
   * The `Authorization` value for the next request (`Bearer <token>`): the cached token, or a new
   * one (one request for every concurrent caller). Rejects with `ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE`
   * or `ERR_UPSTREAM_CREDENTIAL_REFUSED` (503), or with `signal`'s reason when the caller aborts.
   */
  async authorization(signal?: AbortSignal): Promise<string> {
    return `Bearer ${await this.token.get(signal)}`;
  }

  /** Counters: token requests, tokens obtained, failures; never a token. */
  stats(): Readonly<CredentialStats> {
    return { ...this.token.stats };
  }

  /** The upstream's client certificate (or CA) was rotated: token requests use the new one. */
  useTls(tls: TokenEndpointTls): void {
    this.endpoint.useTls(withCa(tls, this.staticCa));
    // A token obtained with the old certificate may be bound to it (RFC 8705 §3): replace it soon.
    if (this.presentsClientCertificate) this.token.refreshSoon();
  }

  async close(): Promise<void> {
    this.token.close();
    await this.endpoint.close();
  }
}

function reader(credential: ResolvedUpstreamCredential, key: 'subjectToken'): SubjectTokenReader {
  const source = credential[key];
  if (source === undefined) throw new TypeError(`a token exchange needs "${key}"`);
  return subjectTokenReader(source, 'subject token');
}

/** The token endpoint's own CA when configured, else the upstream's. */
function withCa(tls: TokenEndpointTls, staticCa: Buffer | undefined): TokenEndpointTls {
  if (staticCa === undefined) return tls;
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = { ca: staticCa };
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  return out;
}
