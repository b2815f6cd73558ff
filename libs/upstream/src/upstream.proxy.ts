import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Logger } from '@nestjs/common';
import { isShieldError, ShieldError, toHttpResponse } from '@inference-shield/core/internal';
import {
  HOP_BY_HOP_HEADERS,
  NEVER_FORWARDED_REQUEST_HEADERS,
  NEVER_RETURNED_RESPONSE_HEADERS,
} from './upstream.constants.js';
import { toUpstreamError } from './upstream-error.mapping.js';
import type { CallerAssertionSigner } from './caller-assertion.js';
import type { UpstreamClient, UpstreamMethod, UpstreamResponse } from './upstream.client.js';
import type { ResolvedUpstreamProxyOptions } from './upstream-options.interface.js';

/** An inbound request: Node's / Express's `req`, or Fastify's `request` (with `raw`). */
export type ProxyInboundRequest =
  IncomingMessage | { readonly raw: IncomingMessage; readonly body?: unknown };

/** An outbound response: Node's / Express's `res`, or Fastify's `reply` (hijacked, then `raw` used). */
export type ProxyOutboundResponse = ServerResponse | { readonly raw: ServerResponse; hijack(): unknown };

/** Options of one {@link UpstreamProxy.forward} call. */
export interface ProxyForwardOptions {
  /** Path (and query) under the upstream's base URL, e.g. `chat/completions`. */
  readonly path: string;
  /**
   * The body when the framework already parsed it (Nest's Express body parser does); default: the
   * request's `rawBody`, else its parsed `body`, else the unread stream.
   */
  readonly body?: unknown;
}

const METHODS: ReadonlySet<string> = new Set<UpstreamMethod>([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
]);
/** Time allowed for a request body the framework left unread (slow uploads hold a connection). */
const BODY_READ_TIMEOUT_MS = 30_000;
/** Bytes of a refused upstream answer read to keep its connection; beyond that it is dropped. */
const DRAIN_LIMIT = 64 * 1024;

/**
 * Forwards an inbound request to one upstream and streams the answer back: SSE and chunked bodies
 * are written chunk by chunk as they arrive (no buffering, backpressure kept), the inbound
 * `Authorization` and cookies never leave, hop-by-hop fields are dropped, request and response
 * headers pass an allow-list, and a caller hanging up cancels the upstream request.
 *
 * @example
 * // in a controller method decorated with Post('chat/completions'), taking Req() and Res():
 * return this.llm.forward(req, res, { path: 'chat/completions' });
 */
export class UpstreamProxy {
  private readonly logger: Logger;
  /** The request headers that may be forwarded, before the inbound `Connection` tokens. */
  private readonly forwardable: readonly string[];

  constructor(
    private readonly client: UpstreamClient,
    private readonly options: ResolvedUpstreamProxyOptions,
    private readonly signer?: CallerAssertionSigner,
  ) {
    if (options.assertCaller && signer === undefined) {
      throw new TypeError(`upstream "${client.name}": proxy.assertCaller needs a caller assertion signer`);
    }
    this.logger = new Logger(`UpstreamProxy:${client.name}`);
    // Fixed at start-up: the allow-list minus what is never forwarded (credentials, hop-by-hop)
    // and the assertion header, which only this service may set.
    this.forwardable = [...options.requestHeaders].filter(
      (name) => !NEVER_FORWARDED_REQUEST_HEADERS.has(name) && name !== signer?.header,
    );
  }

  /**
   * Forward `req` and stream the answer into `res`. Never rejects: a refusal before the response
   * starts is written with `toHttpResponse` (our code, 4xx/502/504, no upstream detail); a failure
   * mid-stream cuts the response, so the caller sees a truncated stream, never a forged end.
   */
  async forward(
    req: ProxyInboundRequest,
    res: ProxyOutboundResponse,
    opts: ProxyForwardOptions,
  ): Promise<void> {
    const rawReq = 'raw' in req ? req.raw : req;
    let rawRes: ServerResponse;
    if ('raw' in res) {
      // Fastify: we write to the socket ourselves; tell Fastify not to.
      res.hijack();
      rawRes = res.raw;
    } else {
      rawRes = res;
    }
    const cancel = new AbortController();
    const onClose = (): void => {
      // `close` before the response finished: the caller hung up. Stop the upstream work now.
      if (!rawRes.writableFinished) cancel.abort();
    };
    rawRes.once('close', onClose);
    let upstream: UpstreamResponse | undefined;
    try {
      const method = (rawReq.method ?? 'GET').toUpperCase();
      if (!METHODS.has(method)) throw new ShieldError('ERR_METHOD_NOT_ALLOWED');
      const body = method === 'GET' || method === 'HEAD' ? undefined : await this.readBody(req, rawReq, opts);
      const headers = this.requestHeaders(rawReq.headers, body);
      if (this.options.assertCaller && this.signer !== undefined) {
        const caller = this.signer.callerOf(req);
        // Attribution was asked for: an anonymous request is not forwarded under no one's name.
        if (caller === undefined)
          throw new ShieldError('ERR_CALLER_NOT_ALLOWED', { detail: 'no verified caller to assert' });
        headers[this.signer.header] = await this.signer.sign(caller, this.client.origin);
      }
      if (cancel.signal.aborted) throw new ShieldError('ERR_UPSTREAM_ABORTED');
      const request: Parameters<UpstreamClient['request']>[0] = {
        path: opts.path,
        method: method as UpstreamMethod,
        headers,
        signal: cancel.signal,
        ...(body !== undefined ? { body } : {}),
      };
      upstream = await this.client.request(request);
      const status = upstream.statusCode;
      if (!(status >= 200 && status < 300) && !this.options.passThroughStatuses.has(status)) {
        // The upstream's own failure (5xx, 401 for our key...): its body may describe its internals
        // or our account, so the caller gets our code only.
        upstream.body.dump({ limit: DRAIN_LIMIT }).catch(() => undefined);
        throw this.client.recordError(
          new ShieldError('ERR_UPSTREAM_BAD_RESPONSE', { detail: `upstream status ${status}` }),
        );
      }
      rawRes.writeHead(status, this.responseHeaders(upstream.headers));
      // Headers go out now: an SSE client sees the stream open before the first token.
      rawRes.flushHeaders();
      await pipeline(upstream.body, rawRes);
    } catch (err) {
      this.fail(err, rawRes, cancel.signal.aborted, upstream);
    } finally {
      rawRes.off('close', onClose);
    }
  }

  private fail(
    err: unknown,
    res: ServerResponse,
    callerGone: boolean,
    upstream: UpstreamResponse | undefined,
  ): void {
    upstream?.body.destroy();
    if (callerGone) {
      // Not an error of the upstream: the caller left and we cancelled. Nothing to answer.
      if (!isShieldError(err) || err.code !== 'ERR_UPSTREAM_ABORTED')
        this.client.recordError(new ShieldError('ERR_UPSTREAM_ABORTED', { cause: err }));
      res.destroy();
      return;
    }
    const mapped = isShieldError(err) ? err : this.client.recordError(toUpstreamError(err));
    // Code and upstream name only: a library message could quote the prompt or a header. A TLS
    // refusal of our certificate adds its alert (`detail`, made by our mapping, never the body).
    const alert = mapped.code === 'ERR_UPSTREAM_CLIENT_CERT_REFUSED' ? mapped.details.detail : undefined;
    this.logger.warn(`forward failed: ${mapped.code}${alert !== undefined ? `, ${alert}` : ''}`);
    if (res.headersSent) {
      // Mid-stream: the status is gone; cutting the connection is the only honest signal.
      res.destroy();
      return;
    }
    const out = toHttpResponse(mapped);
    const json = JSON.stringify(out.body);
    res.writeHead(out.status, {
      ...out.headers,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(json),
    });
    res.end(json);
  }

  /** The allow-listed request headers; everything hop-by-hop or credential-like is dropped. */
  private requestHeaders(inbound: IncomingHttpHeaders, body: Buffer | undefined): Record<string, string> {
    const dropped = connectionTokens(inbound.connection);
    const out: Record<string, string> = {};
    for (const name of this.forwardable) {
      if (dropped.has(name)) continue;
      const value = inbound[name];
      if (value === undefined) continue;
      out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    // We stream bytes through undecoded: ask for them unencoded so SSE is never held by a compressor.
    out['accept-encoding'] = 'identity';
    if (body !== undefined) out['content-length'] = String(body.length);
    return out;
  }

  /** The allow-listed response headers (plus `openai-*` but those naming our account). */
  private responseHeaders(upstream: IncomingHttpHeaders): OutgoingHttpHeaders {
    const dropped = connectionTokens(upstream.connection);
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(upstream)) {
      if (value === undefined || NEVER_RETURNED_RESPONSE_HEADERS.has(name) || dropped.has(name)) continue;
      if (this.options.responseHeaders.has(name) || name.startsWith('openai-')) out[name] = value;
    }
    return out;
  }

  /** The request body, bounded: the framework's raw or parsed body, else the unread stream. */
  private async readBody(
    req: ProxyInboundRequest,
    raw: IncomingMessage,
    opts: ProxyForwardOptions,
  ): Promise<Buffer> {
    const max = this.options.maxRequestBodyBytes;
    const declared = Number(raw.headers['content-length'] ?? 0);
    if (Number.isFinite(declared) && declared > max) throw new ShieldError('ERR_BODY_TOO_LARGE');
    const parsed = opts.body !== undefined ? opts.body : bodyOf(req);
    let buf: Buffer | undefined;
    if (Buffer.isBuffer(parsed)) buf = parsed;
    else if (typeof parsed === 'string') buf = Buffer.from(parsed, 'utf8');
    else if (parsed !== undefined && parsed !== null && typeof parsed === 'object' && !raw.readable)
      buf = Buffer.from(JSON.stringify(parsed), 'utf8');
    if (buf === undefined) buf = await readStream(raw, max);
    if (buf.length > max) throw new ShieldError('ERR_BODY_TOO_LARGE');
    return buf;
  }
}

/** `rawBody` (Nest's `rawBody: true`) first, then a parsed `body`. */
function bodyOf(req: ProxyInboundRequest): unknown {
  const r = req as { rawBody?: unknown; body?: unknown };
  if (Buffer.isBuffer(r.rawBody)) return r.rawBody;
  return r.body;
}

/** Field names listed in `Connection` are hop-by-hop for this message (RFC 9110 §7.6.1). */
function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return HOP_BY_HOP_HEADERS;
  const names = new Set(HOP_BY_HOP_HEADERS);
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '') names.add(name);
  }
  return names;
}

function readStream(raw: IncomingMessage, max: number): Promise<Buffer> {
  if (raw.readableEnded || !raw.readable) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => finish(new ShieldError('ERR_REQUEST_TIMEOUT')), BODY_READ_TIMEOUT_MS);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      raw.off('data', onData).off('end', onEnd).off('error', onError).off('close', onEnd);
      if (err !== undefined) {
        raw.resume();
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) finish(new ShieldError('ERR_BODY_TOO_LARGE'));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(raw.complete ? undefined : new ShieldError('ERR_UPSTREAM_ABORTED'));
    const onError = (err: Error): void => finish(new ShieldError('ERR_BAD_REQUEST', { cause: err }));
    raw.on('data', onData).once('end', onEnd).once('error', onError).once('close', onEnd);
  });
}
