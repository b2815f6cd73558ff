import { createPrivateKey, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import * as oauth from 'oauth4webapi';
import { importPKCS8 } from 'jose';
import { Agent, fetch as undiciFetch, ProxyAgent, type Dispatcher } from 'undici';
import { readBoundedFile, ShieldError } from '@inference-shield/core/internal';
import { UPSTREAM_CIPHERS } from '../upstream.constants.js';
import type { ResolvedClientAuth, ResolvedUpstreamCredential } from './credential-options.interface.js';
import type { FetchedToken } from './refreshing-token.js';

/** A token response is a few KiB; more is refused before it is parsed. */
const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Used when the token endpoint gives no `expires_in` (RFC 6749 §5.1 makes it optional). */
export const DEFAULT_TOKEN_LIFETIME_S = 300;

/** The TLS material the token endpoint connection uses (the upstream's CA and client certificate). */
export interface TokenEndpointTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** The upstream's egress proxy (HTTP `CONNECT`), which token requests go through too. */
export interface TokenEndpointEgress {
  readonly url: string;
  /** CAs of an `https:` proxy. */
  readonly ca?: Buffer;
}

/**
 * Load the client authentication of `auth` for oauth4webapi: a private key (private_key_jwt) is
 * read once here, at start-up; a bad file is a `TypeError` naming the field and the file.
 */
export async function loadClientAuth(field: string, auth: ResolvedClientAuth): Promise<oauth.ClientAuth> {
  switch (auth.method) {
    case 'private_key_jwt': {
      let key: KeyObject;
      let pem: string;
      try {
        pem = readBoundedFile(auth.privateKeyFile, 'client assertion key', MAX_KEY_FILE_BYTES).toString(
          'utf8',
        );
        key = parsePrivateKey(pem);
      } catch (err) {
        throw new TypeError(
          `"${field}.privateKeyFile": ${auth.privateKeyFile} does not hold a readable private key`,
          {
            cause: err,
          },
        );
      }
      const alg = jwsAlgorithmOf(key);
      if (alg === undefined) {
        throw new TypeError(
          `"${field}.privateKeyFile": ${auth.privateKeyFile} must be an EC P-256/P-384, RSA (2048+) or Ed25519 key`,
        );
      }
      const cryptoKey = await importPKCS8(key.export({ type: 'pkcs8', format: 'pem' }).toString(), alg);
      // `kid` only when configured: an IdP that registered the key without one matches no `kid`.
      const pk: oauth.PrivateKey = { key: cryptoKey as oauth.PrivateKey['key'] };
      if (auth.kid !== undefined) pk.kid = auth.kid;
      return oauth.PrivateKeyJwt(pk);
    }
    case 'tls_client_auth':
      return oauth.TlsClientAuth();
    case 'client_secret_basic':
      return oauth.ClientSecretBasic(auth.clientSecret);
    case 'client_secret_post':
      return oauth.ClientSecretPost(auth.clientSecret);
    case 'none':
      // No client authentication: send client_id only when one is configured.
      return auth.clientId !== undefined ? oauth.None() : () => undefined;
  }
}

/**
 * `createPrivateKey`, once more on failure: an error an earlier TLS call left on OpenSSL's error
 * queue (seen once here on Node 20, right after TLS contexts were built) can make a good key fail once; the failure
 * pops it. A bad key fails both times.
 */
function parsePrivateKey(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    return createPrivateKey(pem);
  }
}

function jwsAlgorithmOf(key: KeyObject): string | undefined {
  const d = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'ec':
      return d?.namedCurve === 'prime256v1' ? 'ES256' : d?.namedCurve === 'secp384r1' ? 'ES384' : undefined;
    case 'rsa':
      return (d?.modulusLength ?? 0) >= 2048 ? 'RS256' : undefined;
    case 'ed25519':
      return 'EdDSA';
    default:
      return undefined;
  }
}

/**
 * Token requests of one credential: oauth4webapi for the protocol, our own undici `Agent` for the
 * connection (https only, the configured CA, the upstream's client certificate where the token
 * endpoint must see it), a bounded response, and typed errors that never carry a token.
 */
export class TokenEndpoint {
  private agent: Dispatcher;
  private readonly as: oauth.AuthorizationServer;
  private readonly client: oauth.Client;

  constructor(
    private readonly credential: ResolvedUpstreamCredential,
    private readonly clientAuth: oauth.ClientAuth,
    tls: TokenEndpointTls,
    private readonly connectMs: number,
    private readonly egress?: TokenEndpointEgress,
  ) {
    this.as = { issuer: credential.issuer, token_endpoint: credential.tokenEndpoint };
    // oauth4webapi wants a client_id; without one configured, the no-op client authentication
    // below never sends this placeholder.
    this.client = { client_id: credential.clientAuth.clientId ?? 'unregistered-client' };
    this.agent = this.buildAgent(tls);
  }

  /** A rotated client certificate (or CA): new token requests use it; the old pool is closed. */
  useTls(tls: TokenEndpointTls): void {
    const previous = this.agent;
    this.agent = this.buildAgent(tls);
    previous.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.agent.destroy().catch(() => undefined);
  }

  /** One grant request; `params` are the grant's own parameters (subject token...). */
  async request(
    grantType: string,
    params: Record<string, string>,
    signal: AbortSignal,
  ): Promise<FetchedToken> {
    const c = this.credential;
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(c.parameters)) body.set(k, v);
    for (const [k, v] of Object.entries(params)) body.set(k, v);
    if (c.scope !== undefined) body.set('scope', c.scope);
    if (c.audience !== undefined) body.set('audience', c.audience);
    if (c.resource !== undefined) body.set('resource', c.resource);
    const options: oauth.TokenEndpointRequestOptions = {
      signal,
      [oauth.customFetch]: (url, init) => this.send(url, init),
    };
    let response: Response;
    let result: oauth.TokenEndpointResponse;
    try {
      if (grantType === 'client_credentials') {
        response = await oauth.clientCredentialsGrantRequest(
          this.as,
          this.client,
          this.clientAuth,
          body,
          options,
        );
        result = await oauth.processClientCredentialsResponse(this.as, this.client, response);
      } else {
        response = await oauth.genericTokenEndpointRequest(
          this.as,
          this.client,
          this.clientAuth,
          grantType,
          body,
          options,
        );
        result = await oauth.processGenericTokenEndpointResponse(this.as, this.client, response);
      }
    } catch (err) {
      throw classify(err, signal);
    }
    if (result.token_type !== 'bearer') {
      throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
        detail: 'token endpoint issued a token that is not a Bearer token',
      });
    }
    return {
      accessToken: result.access_token,
      expiresInSeconds: typeof result.expires_in === 'number' ? result.expires_in : DEFAULT_TOKEN_LIFETIME_S,
    };
  }

  /** oauth4webapi's fetch, over our agent; JSON body when configured; response size bounded. */
  private async send(
    url: string,
    init: oauth.CustomFetchOptions<'POST', URLSearchParams>,
  ): Promise<Response> {
    const headers = new Headers(init.headers);
    let body: string = init.body.toString();
    if (this.credential.encoding === 'json') {
      body = JSON.stringify(Object.fromEntries(init.body));
      headers.set('content-type', 'application/json');
    }
    const res = await undiciFetch(url, {
      method: 'POST',
      headers: [...headers.entries()],
      body,
      // A redirect from a token endpoint is refused by oauth4webapi; never followed here.
      redirect: 'manual',
      dispatcher: this.agent,
      ...(init.signal !== undefined ? { signal: init.signal } : {}),
    });
    const bytes = await readBounded(res.body, MAX_TOKEN_RESPONSE_BYTES);
    return new Response(res.status === 204 || res.status === 304 ? null : bytes, {
      status: res.status,
      headers: [...res.headers.entries()],
    });
  }

  private buildAgent(tls: TokenEndpointTls): Dispatcher {
    const host = new URL(this.credential.tokenEndpoint).hostname.replace(/^\[|\]$/g, '');
    const connect: Record<string, unknown> = {
      // Explicit: NODE_TLS_REJECT_UNAUTHORIZED=0 changes only the default.
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ciphers: UPSTREAM_CIPHERS,
      timeout: this.connectMs,
    };
    if (isIP(host) === 0) connect.servername = host;
    if (tls.ca !== undefined) connect.ca = tls.ca;
    // The client certificate only where the token endpoint authenticates us with it: the key
    // stays inside the TLS stack, nothing derived from it is sent.
    if (this.credential.presentsClientCertificate && tls.cert !== undefined && tls.key !== undefined) {
      connect.cert = tls.cert;
      connect.key = tls.key;
    }
    const pool = {
      connections: 2,
      keepAliveTimeout: 10_000,
      headersTimeout: this.credential.timeoutMs,
      bodyTimeout: this.credential.timeoutMs,
    };
    if (this.egress === undefined) return new Agent({ ...pool, connect });
    // TLS to the token endpoint runs end to end inside the CONNECT tunnel, with the same checks.
    const proxyTls: Record<string, unknown> = {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      timeout: this.connectMs,
    };
    if (this.egress.ca !== undefined) proxyTls.ca = this.egress.ca;
    return new ProxyAgent({
      ...pool,
      uri: this.egress.url,
      proxyTunnel: true,
      requestTls: connect,
      proxyTls,
    });
  }
}

async function readBounded(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array> {
  if (body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) {
      await body.cancel().catch(() => undefined);
      throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
        detail: `token endpoint answer is larger than ${max} bytes`,
      });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const OAUTH_ERROR = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

/**
 * The token endpoint's refusal (an OAuth error: our credential is wrong or not allowed) is
 * `ERR_UPSTREAM_CREDENTIAL_REFUSED`; anything else (down, timeout, 5xx, garbage) is
 * `ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE`. The detail holds the status and OAuth error code only.
 */
function classify(err: unknown, signal: AbortSignal): ShieldError {
  if (err instanceof ShieldError) return err;
  if (err instanceof oauth.ResponseBodyError || err instanceof oauth.WWWAuthenticateChallengeError) {
    const status = err.status;
    const code = err instanceof oauth.ResponseBodyError ? err.error : 'invalid_client';
    const safe = OAUTH_ERROR.test(code) ? code : 'error';
    const detail = `token endpoint answered ${status} ${safe}`;
    if (status >= 500 || safe === 'temporarily_unavailable' || safe === 'server_error' || status === 429) {
      return new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', { cause: withoutBody(err), detail });
    }
    return new ShieldError('ERR_UPSTREAM_CREDENTIAL_REFUSED', { cause: withoutBody(err), detail });
  }
  if (err instanceof oauth.OperationProcessingError) {
    // A status other than 200 without an OAuth error body (oauth4webapi reads those for 4xx only):
    // a 5xx or 429 is an outage, another 4xx a wrong configuration (path, method, registration).
    const status = (err.cause as { status?: unknown } | undefined)?.status;
    if (err.code === oauth.RESPONSE_IS_NOT_CONFORM && typeof status === 'number' && status !== 200) {
      const outage = status >= 500 || status === 429;
      return new ShieldError(
        outage ? 'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE' : 'ERR_UPSTREAM_CREDENTIAL_REFUSED',
        {
          cause: withoutBody(err),
          detail: `token endpoint answered ${status}`,
        },
      );
    }
    return new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
      cause: withoutBody(err),
      detail: 'token endpoint gave an answer that is not a valid token response',
    });
  }
  return new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
    cause: err,
    detail: signal.aborted
      ? 'token request timed out or was cancelled'
      : err instanceof TypeError && err.message === 'fetch failed'
        ? 'token endpoint could not be reached'
        : 'token request failed',
  });
}

/**
 * oauth4webapi's errors keep the response and its parsed body as `cause`; a successful-looking
 * body with a bad field may hold a token. Keep the message and code only.
 */
function withoutBody(err: Error): Error {
  const out = new Error(err.message);
  out.name = err.name;
  return out;
}
