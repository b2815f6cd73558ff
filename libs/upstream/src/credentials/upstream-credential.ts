import { createHash } from 'node:crypto';
import { loadCaSource, ShieldError } from '@inference-shield/core/internal';
import type { ResolvedUpstreamCredential } from './credential-options.interface.js';
import { GRANT_TYPE_JWT_BEARER, GRANT_TYPE_TOKEN_EXCHANGE } from './credential-options.resolver.js';
import { RefreshingToken, type CredentialStats } from './refreshing-token.js';
import { subjectTokenReader } from './subject-token.js';
import {
  loadClientAuth,
  TokenEndpoint,
  type TokenEndpointEgress,
  type TokenEndpointTls,
} from './token-endpoint.js';

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
  /** On behalf of: one token per caller (by token digest), oldest dropped first. */
  private readonly callers = new Map<string, RefreshingToken>();
  private readonly callerStats: CredentialStats = {
    tokenRequests: 0,
    tokensObtained: 0,
    tokenFailures: 0,
    refreshFailures: 0,
  };

  private constructor(
    private readonly presentsClientCertificate: boolean,
    /** True when the subject token is the inbound caller's (`{ callerToken: true }`). */
    readonly onBehalfOf: boolean,
    private readonly endpoint: TokenEndpoint,
    private readonly staticCa: Buffer | undefined,
    private readonly grant: Grant,
    private readonly timeoutMs: number,
    hooks: UpstreamCredentialHooks,
  ) {
    this.token = new RefreshingToken({
      fetch: (signal) => grant(signal, undefined),
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
    egressProxy?: TokenEndpointEgress,
  ): Promise<UpstreamCredential> {
    const field = `upstreams.${upstream}.credential.${credential.kind}`;
    const clientAuth = await loadClientAuth(`${field}.clientAuth`, credential.clientAuth);
    const staticCa = credential.ca !== undefined ? loadCaSource(`${field}.ca`, credential.ca) : undefined;
    const endpoint = new TokenEndpoint(credential, clientAuth, withCa(tls, staticCa), connectMs, egressProxy);
    let grant: Grant;
    const source = credential.subjectToken;
    const onBehalfOf = source !== undefined && 'callerToken' in source;
    if (credential.kind === 'clientCredentials') {
      grant = (signal) => endpoint.request('client_credentials', {}, signal);
    } else if (credential.kind === 'certificateExchange') {
      // OpenAI's X.509 flow: the certificate on this mTLS connection is the subject; no subject_token.
      grant = (signal) => endpoint.request(GRANT_TYPE_TOKEN_EXCHANGE, {}, signal);
    } else {
      if (source === undefined) throw new TypeError(`"${field}.subjectToken" is required`);
      const subject = 'callerToken' in source ? undefined : subjectTokenReader(source, 'subject token');
      const actor =
        credential.actorToken !== undefined
          ? subjectTokenReader(credential.actorToken, 'actor token')
          : undefined;
      grant = async (signal, callerToken) => {
        const subjectToken =
          subject !== undefined ? await subject.read(credential.audience, signal) : callerToken;
        if (subjectToken === undefined) {
          throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
            detail: "this upstream exchanges the caller's token: call it inside client.onBehalfOf()",
          });
        }
        if (credential.grant === 'jwt-bearer') {
          return endpoint.request(GRANT_TYPE_JWT_BEARER, { assertion: subjectToken }, signal);
        }
        const params: Record<string, string> = {
          subject_token: subjectToken,
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
      onBehalfOf,
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
   * With `callerToken` (on behalf of), the token exchanged for that caller's token.
   */
  async authorization(signal?: AbortSignal, callerToken?: string): Promise<string> {
    if (!this.onBehalfOf) return `Bearer ${await this.token.get(signal)}`;
    if (callerToken === undefined) {
      throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
        detail: "this upstream exchanges the caller's token: call it inside client.onBehalfOf()",
      });
    }
    return `Bearer ${await this.callerToken(callerToken).get(signal)}`;
  }

  /** Counters: token requests, tokens obtained, failures (callers' exchanges included); never a token. */
  stats(): Readonly<CredentialStats> {
    const own = this.token.stats;
    const c = this.callerStats;
    let live: CredentialStats = { tokenRequests: 0, tokensObtained: 0, tokenFailures: 0, refreshFailures: 0 };
    for (const t of this.callers.values()) live = add(live, t.stats);
    return add(add(own, c), live);
  }

  /** The upstream's client certificate (or CA) was rotated: token requests use the new one. */
  useTls(tls: TokenEndpointTls): void {
    this.endpoint.useTls(withCa(tls, this.staticCa));
    // A token obtained with the old certificate may be bound to it (RFC 8705 §3): replace it soon.
    if (this.presentsClientCertificate) {
      this.token.refreshSoon();
      for (const t of this.callers.values()) t.refreshSoon();
    }
  }

  async close(): Promise<void> {
    this.token.close();
    for (const t of this.callers.values()) t.close();
    this.callers.clear();
    await this.endpoint.close();
  }

  /** The cached token of one caller (bounded: the least recently used callers are dropped). */
  private callerToken(callerToken: string): RefreshingToken {
    if (!/^[\x21-\x7e]{1,16384}$/.test(callerToken)) {
      throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
        detail: "the caller's token is not usable",
      });
    }
    // Keyed by a digest: the map never holds the caller's token itself.
    const key = createHash('sha256').update(callerToken).digest('base64url');
    let token = this.callers.get(key);
    if (token !== undefined) {
      this.callers.delete(key);
      this.callers.set(key, token);
      return token;
    }
    token = new RefreshingToken({
      fetch: (signal) => this.grant(signal, callerToken),
      timeoutMs: this.timeoutMs,
      background: false,
    });
    this.callers.set(key, token);
    while (this.callers.size > MAX_CALLERS) {
      const [oldestKey, oldest] = this.callers.entries().next().value as [string, RefreshingToken];
      this.callers.delete(oldestKey);
      oldest.close();
      const s = oldest.stats;
      Object.assign(this.callerStats, add(this.callerStats, s));
    }
    return token;
  }
}

/** Tokens exchanged on behalf of at most this many callers at once (least recently used dropped). */
const MAX_CALLERS = 1000;

type Grant = (
  signal: AbortSignal,
  callerToken: string | undefined,
) => Promise<{ accessToken: string; expiresInSeconds: number }>;

function add(a: CredentialStats, b: CredentialStats): CredentialStats {
  return {
    tokenRequests: a.tokenRequests + b.tokenRequests,
    tokensObtained: a.tokensObtained + b.tokensObtained,
    tokenFailures: a.tokenFailures + b.tokenFailures,
    refreshFailures: a.refreshFailures + b.refreshFailures,
  };
}

/** The token endpoint's own CA when configured, else the upstream's. */
function withCa(tls: TokenEndpointTls, staticCa: Buffer | undefined): TokenEndpointTls {
  if (staticCa === undefined) return tls;
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = { ca: staticCa };
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  return out;
}
