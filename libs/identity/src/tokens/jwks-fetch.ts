import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';
import { deadlineSignal, parseHttpsUrl } from '@inference-shield/core/internal';
import { parseStrictJson } from './strict-json.js';

/** The fetch used for discovery and key sets: undici's (it takes our per-issuer `dispatcher`). */
export type JwksFetch = typeof undiciFetch;

/** Largest discovery document or key set we read; the rest is never buffered. */
export const MAX_KEY_DOCUMENT_BYTES = 512 * 1024;

/**
 * A failed discovery or key-set fetch. The message names the URL and the reason (status, TLS
 * error code, size...) for operators; it never quotes the response body.
 */
export class KeySetFetchError extends Error {
  override readonly name = 'KeySetFetchError';
}

/** What one issuer needs to fetch: its own agent (its CA), a timeout, and the close signal. */
export interface FetchContext {
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  readonly fetch: JwksFetch;
  /** Aborted by `TokenVerifier.close()`, so no fetch outlives the verifier. */
  readonly closed: AbortSignal;
}

/**
 * One undici Agent per issuer, created at start-up. `ca` *replaces* the system roots (a private
 * IdP signed by our dev CA must not also be trusted through a public CA, nor the reverse).
 * `rejectUnauthorized` is explicit so `NODE_TLS_REJECT_UNAUTHORIZED=0` cannot turn it off.
 */
export function createIssuerAgent(options: { ca?: Buffer; timeoutMs: number }): Agent {
  return new Agent({
    connect: {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      timeout: options.timeoutMs,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
    },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connections: 2,
  });
}

const JSON_TYPE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;|$)/i;

/**
 * GETs a JSON document over https: no redirects (a redirect could lead to http or to another
 * host), a timeout on the whole exchange, a JSON content type, and a size cap enforced while
 * reading. Throws {@link KeySetFetchError}.
 */
export async function fetchJsonDocument(url: string, ctx: FetchContext): Promise<unknown> {
  // The deadline covers the whole exchange, body included; cleared once it has settled.
  const deadline = deadlineSignal(ctx.timeoutMs, ctx.closed);
  const signal = deadline.signal;
  let res: Awaited<ReturnType<JwksFetch>>;
  try {
    res = await ctx.fetch(url, {
      dispatcher: ctx.dispatcher,
      redirect: 'error',
      signal,
      headers: { accept: 'application/json, application/jwk-set+json' },
    });
  } catch (err) {
    deadline.clear();
    throw new KeySetFetchError(`GET ${url} failed: ${reasonOf(err)}`, { cause: err });
  }
  try {
    if (res.status !== 200) throw new KeySetFetchError(`GET ${url} answered HTTP ${res.status}`);
    const type = res.headers.get('content-type') ?? '';
    if (!JSON_TYPE.test(type)) {
      throw new KeySetFetchError(`GET ${url} answered a content type that is not JSON`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_KEY_DOCUMENT_BYTES) {
      throw new KeySetFetchError(`GET ${url} answered more than ${MAX_KEY_DOCUMENT_BYTES} bytes`);
    }
    const body = await readCapped(res, url);
    try {
      return parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(body));
    } catch (err) {
      throw new KeySetFetchError(`GET ${url} answered invalid JSON`, { cause: err });
    }
  } finally {
    // Release the connection whatever happened (a no-op once the body was read).
    await res.body?.cancel().catch(() => undefined);
    deadline.clear();
  }
}

async function readCapped(res: Awaited<ReturnType<JwksFetch>>, url: string): Promise<Buffer> {
  if (!res.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      if (size > MAX_KEY_DOCUMENT_BYTES) {
        throw new KeySetFetchError(`GET ${url} answered more than ${MAX_KEY_DOCUMENT_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof KeySetFetchError) throw err;
    throw new KeySetFetchError(`GET ${url} failed while reading: ${reasonOf(err)}`, { cause: err });
  }
  return Buffer.concat(chunks, size);
}

/**
 * OpenID Connect Discovery 1.0 §4: fetch the issuer's metadata and take its `jwks_uri`. §4.3:
 * the document's `issuer` must equal ours exactly, or an attacker able to serve one document
 * could make us trust another issuer's keys.
 */
export async function discoverJwksUri(
  discoveryUrl: string,
  issuer: string,
  ctx: FetchContext,
): Promise<string> {
  const doc = await fetchJsonDocument(discoveryUrl, ctx);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new KeySetFetchError(`GET ${discoveryUrl} answered no JSON object`);
  }
  const meta = doc as Record<string, unknown>;
  if (meta['issuer'] !== issuer) {
    throw new KeySetFetchError(
      `GET ${discoveryUrl}: the document's "issuer" is not ${JSON.stringify(issuer)}`,
    );
  }
  try {
    return parseHttpsUrl('jwks_uri', meta['jwks_uri']).href;
  } catch (err) {
    throw new KeySetFetchError(`GET ${discoveryUrl}: "jwks_uri" is not an https: URL`, { cause: err });
  }
}

/** A short, safe reason: an error code (undici, TLS, DNS) or the error class, never a body. */
function reasonOf(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (e.name === 'TimeoutError') return 'timeout';
    if (e.name === 'AbortError') return 'aborted';
    e = e.cause;
  }
  return err instanceof Error ? err.name : 'unknown error';
}
