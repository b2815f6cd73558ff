/**
 * A small OAuth 2.0 `client_credentials` client (RFC 6749 4.4) for the dev IdP, used by
 * `DevIdp.getToken()` and by the token CLI. It imports nothing of oidc-provider, so the CLI's
 * stdout carries the token and nothing else.
 *
 * Trust is explicit: the dev CA goes into the undici Agent (`connect.ca`); verification is never
 * turned off, and `rejectUnauthorized: true` is explicit so `NODE_TLS_REJECT_UNAUTHORIZED=0` has no effect.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { DevIdpAuthMethod } from './clients-config.js';

/** A PEM certificate and key presented at the token endpoint (RFC 8705 mutual TLS). */
export interface ClientCertificate {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** How a client authenticates at the token endpoint. */
export type TokenAuthMethod = DevIdpAuthMethod;

/** One token request. */
export interface AccessTokenRequest {
  readonly tokenEndpoint: string;
  /** The CA that issued the IdP's server certificate (PEM). */
  readonly ca: string | Buffer;
  readonly clientId: string;
  readonly authMethod: TokenAuthMethod;
  readonly clientSecret?: string;
  /** Space-separated scopes. */
  readonly scope: string;
  /** RFC 8707 resource indicator; the IdP's default resource when absent. */
  readonly resource?: string;
  readonly clientCertificate?: ClientCertificate;
  /** RFC 9449: a DPoP proof for this token request; the token is then bound to its key (`cnf.jkt`). */
  readonly dpopProof?: string;
  /** Milliseconds for connect, headers and body each; default 10 s. */
  readonly timeoutMs?: number;
}

/** The token endpoint refused the request (RFC 6749 5.2 error), or answered something unusable. */
export class DevIdpTokenError extends Error {
  override readonly name = 'DevIdpTokenError';
  constructor(
    message: string,
    /** HTTP status, when there was a response. */
    readonly status?: number,
    /** RFC 6749 5.2 `error` code, e.g. `invalid_scope`, `invalid_client`. */
    readonly error?: string,
  ) {
    super(message);
  }
}

/** The IdP could not be reached at all (nothing listening, connection reset, timeout). */
export class DevIdpUnreachableError extends Error {
  override readonly name = 'DevIdpUnreachableError';
  constructor(
    readonly origin: string,
    options?: { cause?: unknown },
  ) {
    super(`dev IdP not reachable at ${origin}; run npm start (or npm run idp)`, options);
  }
}

// A token response is well under a few KB; anything larger is refused without buffering it all.
const MAX_RESPONSE_BYTES = 64 * 1024;
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

// RFC 6749 2.3.1: client id and secret are form-urlencoded before being joined for Basic auth.
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

/** Read a body up to `MAX_RESPONSE_BYTES`, then parse it as JSON. */
async function readJson(body: Dispatcher.ResponseData['body'], what: string): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy();
      throw new DevIdpTokenError(`${what} response is larger than ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new DevIdpTokenError(`${what} response is not JSON`);
  }
}

/** Create the undici Agent for one trust and client-certificate combination. */
export function createDevIdpAgent(
  ca: string | Buffer,
  clientCertificate?: ClientCertificate,
  timeoutMs = 10_000,
): Agent {
  return new Agent({
    connect: {
      ca,
      ...(clientCertificate ? { cert: clientCertificate.cert, key: clientCertificate.key } : {}),
      rejectUnauthorized: true,
      timeout: timeoutMs,
    },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
}

async function send(
  dispatcher: Dispatcher,
  url: URL,
  options: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
): Promise<Dispatcher.ResponseData> {
  try {
    return await request(url, { ...options, dispatcher });
  } catch (err) {
    const code = errorCode(err);
    if (code && UNREACHABLE.has(code)) throw new DevIdpUnreachableError(url.origin, { cause: err });
    if (code?.startsWith('ERR_TLS') || code?.includes('CERT') || code?.startsWith('DEPTH_ZERO')) {
      throw new DevIdpTokenError(
        `TLS to ${url.origin} failed (${code}): is the dev CA the one that issued the IdP's certificate?`,
      );
    }
    throw err;
  }
}

/**
 * Fetch the issuer's discovery document (OpenID Connect Discovery 1.0 section 4) and return its
 * token endpoint. The endpoint must share the issuer's origin: a client secret is never sent to a
 * host the operator did not name.
 */
export async function discoverTokenEndpoint(issuer: string, dispatcher: Dispatcher): Promise<string> {
  const base = new URL(issuer);
  const url = new URL(`${base.pathname.replace(/\/$/, '')}/.well-known/openid-configuration`, base);
  const res = await send(dispatcher, url, { method: 'GET', headers: { accept: 'application/json' } });
  if (res.statusCode !== 200) {
    res.body.destroy();
    throw new DevIdpTokenError(`discovery at ${url.href} answered HTTP ${res.statusCode}`, res.statusCode);
  }
  const doc = await readJson(res.body, 'discovery');
  const { issuer: advertised, token_endpoint: endpoint } = (doc ?? {}) as Record<string, unknown>;
  if (advertised !== issuer) {
    throw new DevIdpTokenError(
      `discovery at ${url.href} names issuer ${JSON.stringify(advertised)}, not ${issuer}`,
    );
  }
  if (typeof endpoint !== 'string' || URL.parse(endpoint)?.origin !== base.origin) {
    throw new DevIdpTokenError(`discovery at ${url.href} names a token endpoint outside ${base.origin}`);
  }
  return endpoint;
}

/**
 * Ask the token endpoint for an access token with the `client_credentials` grant and return it.
 * Throws {@link DevIdpUnreachableError} when the IdP is down, {@link DevIdpTokenError} when it
 * refuses (the error message carries the OAuth `error` code, never the secret).
 */
export async function requestAccessToken(req: AccessTokenRequest, dispatcher?: Dispatcher): Promise<string> {
  const url = new URL(req.tokenEndpoint);
  if (url.protocol !== 'https:')
    throw new TypeError(`"tokenEndpoint" must be an https: URL, got ${req.tokenEndpoint}`);
  const form = new URLSearchParams({ grant_type: 'client_credentials', scope: req.scope });
  if (req.resource !== undefined) form.set('resource', req.resource);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (req.dpopProof !== undefined) headers['dpop'] = req.dpopProof;
  switch (req.authMethod) {
    case 'client_secret_basic':
    case 'client_secret_post': {
      if (!req.clientSecret)
        throw new TypeError(`client ${req.clientId} needs a client secret (${req.authMethod})`);
      if (req.authMethod === 'client_secret_basic') {
        const pair = `${formEncode(req.clientId)}:${formEncode(req.clientSecret)}`;
        headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
      } else {
        form.set('client_id', req.clientId);
        form.set('client_secret', req.clientSecret);
      }
      break;
    }
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
      if (!req.clientCertificate) {
        throw new TypeError(
          `client ${req.clientId} authenticates with a certificate (${req.authMethod}): pass one`,
        );
      }
      form.set('client_id', req.clientId); // RFC 8705 2: the client id goes in the body
      break;
  }

  const via: Dispatcher = dispatcher ?? createDevIdpAgent(req.ca, req.clientCertificate, req.timeoutMs);
  try {
    const res = await send(via, url, {
      method: 'POST',
      headers,
      body: form.toString(),
    });
    const body = (await readJson(res.body, 'token endpoint')) as Record<string, unknown> | null;
    if (res.statusCode !== 200) {
      const error = typeof body?.error === 'string' ? body.error : undefined;
      const description = typeof body?.error_description === 'string' ? `: ${body.error_description}` : '';
      throw new DevIdpTokenError(
        `token endpoint refused (HTTP ${res.statusCode}) ${error ?? 'unknown_error'}${description}`,
        res.statusCode,
        error,
      );
    }
    const token = body?.access_token;
    if (typeof token !== 'string' || token.length === 0) {
      throw new DevIdpTokenError('token endpoint answered without an access_token', res.statusCode);
    }
    return token;
  } finally {
    if (via !== dispatcher) await via.close();
  }
}
