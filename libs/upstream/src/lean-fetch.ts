/**
 * A lean `fetch` for one upstream: undici's dispatcher API (the same pool as `request()`), a
 * standard `Response` whose body comes from the socket as it arrives (with backpressure), and none
 * of WHATWG fetch's machinery a fetch-based SDK does not use (CORS, the request/response filtering,
 * redirect following, cache modes, the fetch controller and its timing info). undici's `fetch`
 * costs the caller about five times the CPU of `request()` for the same call; this one about the
 * same as `request()` (bench/upstream).
 *
 * What differs from `fetch`, on purpose: redirects are never followed (the response is handed to
 * the client, which refuses it); no `accept-encoding` is added (an encoded answer is still decoded,
 * as fetch would); `Request` objects and every `BodyInit` are read, but `mode`, `credentials`,
 * `cache`, `keepalive`, `integrity`, `referrer` and a caller's `dispatcher` are ignored.
 */
import { Duplex } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Dispatcher } from 'undici';

/** A fetch request reduced to what the upstream client sends. */
export interface LeanFetchRequest {
  /** The absolute URL as given (checked against the upstream by the client). */
  url: string | URL;
  /** Upper-cased for the methods fetch normalizes. */
  method: string;
  /** Lower-cased names; a name given twice is joined with `, `, as `Headers` does. */
  headers: Record<string, string>;
  /** What undici sends: a string, bytes, or an async iterable of bytes (a stream). */
  body: string | Uint8Array | AsyncIterable<Uint8Array> | null;
  signal: AbortSignal | undefined;
}

// Methods fetch upper-cases (Fetch §2.2.1 "normalize"); others are sent as given.
const NORMALIZED_METHODS: ReadonlyMap<string, string> = new Map(
  ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH'].map((m) => [m.toLowerCase(), m]),
);
// Fetch refuses these outright (forbidden methods).
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'TRACE', 'TRACK']);
// Statuses whose response has no body (Fetch "null body status").
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

/**
 * Read what a fetch caller passes: a string, a `URL`, or a `Request` (of Node's fetch or of
 * undici's: its fields are read, never the object passed on), and `init`, which wins field by field.
 * Synchronous except for bodies that must be read whole (`Blob`, `FormData`); throws a `TypeError`
 * where fetch would.
 */
export async function leanFetchRequest(
  input: string | URL | Request,
  init: RequestInit | undefined,
): Promise<LeanFetchRequest> {
  let url: string | URL;
  let method = 'GET';
  let headersInit: unknown;
  let body: unknown;
  let signal: AbortSignal | null | undefined;
  if (typeof input === 'string' || input instanceof URL) {
    url = input;
  } else {
    url = input.url;
    method = input.method;
    headersInit = input.headers;
    body = input.body;
    signal = input.signal;
  }
  if (init !== undefined && init !== null) {
    if (init.method !== undefined) method = init.method;
    if (init.headers !== undefined) headersInit = init.headers;
    if (init.body !== undefined) body = init.body;
    if (init.signal !== undefined) signal = init.signal;
  }
  method = NORMALIZED_METHODS.get(method.toLowerCase()) ?? method;
  if (FORBIDDEN_METHODS.has(method.toUpperCase()))
    throw new TypeError(`'${method}' HTTP method is unsupported.`);
  const headers = headersOf(headersInit);
  // The upstream's own `Host` is set by undici from the origin: a caller's would name another
  // virtual host on the same connection.
  delete headers.host;
  const out: LeanFetchRequest = { url, method, headers, body: null, signal: signal ?? undefined };
  if (body === undefined || body === null) return out;
  if (method === 'GET' || method === 'HEAD')
    throw new TypeError('Request with GET/HEAD method cannot have body.');
  out.body = await bodyOf(body, headers);
  return out;
}

/** Request headers as one lower-cased record, from any `HeadersInit` (or a `Headers` of any copy). */
function headersOf(init: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (init === undefined || init === null) return out;
  const add = (name: string, value: string): void => {
    const key = name.toLowerCase();
    const prev = out[key];
    // Leading and trailing whitespace is not part of a value (Fetch "normalize").
    const v = String(value).trim();
    out[key] = prev === undefined ? v : `${prev}, ${v}`;
  };
  if (typeof init !== 'object') throw new TypeError('headers must be an object');
  if (Symbol.iterator in init) {
    // A `Headers` (already lower-cased and joined) or a list of pairs.
    for (const pair of init as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError('header pairs must have two items');
      add(String(pair[0]), String(pair[1]));
    }
    return out;
  }
  for (const [name, value] of Object.entries(init)) add(name, String(value));
  return out;
}

function setDefault(headers: Record<string, string>, name: string, value: string): void {
  if (headers[name] === undefined) headers[name] = value;
}

/** A `BodyInit` as undici sends it, and the content type fetch would give it. */
async function bodyOf(
  body: unknown,
  headers: Record<string, string>,
): Promise<string | Uint8Array | AsyncIterable<Uint8Array>> {
  if (typeof body === 'string') {
    setDefault(headers, 'content-type', 'text/plain;charset=UTF-8');
    return body;
  }
  if (body instanceof Uint8Array) return body;
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer || body instanceof SharedArrayBuffer) return new Uint8Array(body);
  if (body instanceof URLSearchParams) {
    setDefault(headers, 'content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return body.toString();
  }
  // Node's own FormData (the SDK's). undici's npm copy has another class: not recognized here.
  if (typeof FormData === 'function' && body instanceof FormData) {
    // Encoded by Node's own fetch (multipart boundary included), then sent as bytes: file uploads
    // are rare and small next to a model call, and this keeps one sending path.
    const encoded = new Response(body);
    const type = encoded.headers.get('content-type');
    if (type !== null) headers['content-type'] = type;
    return new Uint8Array(await encoded.arrayBuffer());
  }
  if (typeof Blob === 'function' && body instanceof Blob) {
    if (body.type !== '') setDefault(headers, 'content-type', body.type);
    return new Uint8Array(await body.arrayBuffer());
  }
  // A ReadableStream (any copy) or another async iterable of bytes: streamed, never buffered.
  if (typeof body === 'object' && body !== null && Symbol.asyncIterator in body) {
    return body as AsyncIterable<Uint8Array>;
  }
  // Fetch turns any other value into a string (WebIDL USVString).
  setDefault(headers, 'content-type', 'text/plain;charset=UTF-8');
  return String(body);
}

/** Bytes the body holds for a reader that has not come yet, before the socket is paused. */
const READ_AHEAD_BYTES = 64 * 1024;

/**
 * The response body between the socket and its reader: chunks queue here (the socket pauses past
 * {@link READ_AHEAD_BYTES}) until `text()`/`json()`/`arrayBuffer()` take them all, or until a
 * `ReadableStream` is asked for (`response.body`), which is then built over the queue. Most SDK
 * calls read JSON and never touch `body`: they pay for no web stream (on Node 20 building one
 * costs about as much as the rest of the response).
 */
class BodyQueue {
  private chunks: Buffer[] = [];
  private queued = 0;
  /** True once every chunk has come. */
  ended = false;
  /** The mapped error that ended the body early. */
  failure: unknown;
  private waiter: (() => void) | undefined;
  private resumeSocket: (() => void) | undefined;

  constructor(
    /** Cancels the upstream request (the reader gave up). */
    readonly cancel: (reason: unknown) => void,
  ) {}

  /** A chunk from the socket; false asks undici to pause the socket. */
  push(chunk: Buffer, resume: () => void): boolean {
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.wake();
    if (this.queued < READ_AHEAD_BYTES) return true;
    this.resumeSocket = resume;
    return false;
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(err: unknown): void {
    this.failure = err;
    this.ended = true;
    this.wake();
  }

  /** Everything queued now (resuming the socket), or undefined when nothing is. */
  take(): Buffer[] | undefined {
    if (this.chunks.length === 0) return undefined;
    const out = this.chunks;
    this.chunks = [];
    this.queued = 0;
    const resume = this.resumeSocket;
    this.resumeSocket = undefined;
    resume?.();
    return out;
  }

  /** Resolves when a chunk, the end or a failure comes. */
  next(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiter = resolve;
    });
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** The whole body, as it ends. */
  async all(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const got = this.take();
      if (got !== undefined) parts.push(...got);
      else if (this.failure !== undefined) throw this.failure;
      else if (this.ended) break;
      else await this.next();
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** A web stream over the queue, for a reader that streams (an SSE response, say). */
  stream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          for (;;) {
            const got = this.take();
            if (got !== undefined) {
              for (const chunk of got) controller.enqueue(chunk);
              return;
            }
            if (this.failure !== undefined) {
              controller.error(this.failure);
              return;
            }
            if (this.ended) {
              controller.close();
              return;
            }
            await this.next();
          }
        },
        cancel: (reason) => this.cancel(reason),
      },
      { highWaterMark: 0 },
    );
  }
}

/** `Response` as a base class: the DOM typings declare its body members as properties. */
type ResponseBase = new (
  body: null,
  init: { status: number; statusText: string },
) => { readonly headers: Headers; readonly status: number; readonly statusText: string };

/**
 * A standard `Response` (`instanceof Response`, the same headers, status and body methods) whose
 * body is served from a {@link BodyQueue}: `text()`, `json()`, `arrayBuffer()` read the queue
 * directly; `body` builds a `ReadableStream` over it the first time it is asked for.
 */
class LeanResponse extends (Response as unknown as ResponseBase) {
  private stream: ReadableStream<Uint8Array> | null | undefined;
  private used = false;

  constructor(
    private readonly queue: BodyQueue | undefined,
    /** A content coding to undo (`gzip`, `deflate`, `br`), read through the stream. */
    private readonly coding: string | undefined,
    private readonly fetchedUrl: string,
    status: number,
    statusText: string,
  ) {
    super(null, { status, statusText });
  }

  get url(): string {
    return this.fetchedUrl;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.stream === undefined) {
      if (this.queue === undefined) this.stream = null;
      else {
        const raw = this.queue.stream();
        this.stream = this.coding !== undefined ? decoded(raw, this.coding) : raw;
      }
    }
    return this.stream;
  }

  get bodyUsed(): boolean {
    return this.used || (this.stream !== undefined && this.stream !== null && this.stream.locked);
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytesOnce();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer());
  }

  async text(): Promise<string> {
    const bytes = await this.bytesOnce();
    // UTF-8 decode drops a leading byte order mark (Encoding §4.1), as fetch's text() does.
    const bom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
    return (bom ? bytes.subarray(3) : bytes).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async blob(): Promise<Blob> {
    const type = this.headers.get('content-type') ?? '';
    return new Blob([await this.bytesOnce()], { type });
  }

  async formData(): Promise<FormData> {
    return new Response(await this.bytesOnce(), { headers: this.headers }).formData();
  }

  clone(): Response {
    if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
    const body = this.body;
    if (body === null)
      return new Response(null, { status: this.status, statusText: this.statusText, headers: this.headers });
    const [mine, theirs] = body.tee();
    this.stream = mine;
    return new Response(theirs, { status: this.status, statusText: this.statusText, headers: this.headers });
  }

  /** The whole body, once (a second read is a `TypeError`, as with fetch). */
  private async bytesOnce(): Promise<Buffer> {
    if (this.bodyUsed) throw new TypeError('Body is unusable: Body has already been read');
    this.used = true;
    if (this.queue === undefined) return Buffer.alloc(0);
    // Not started as a stream and not encoded: straight from the queue, no web stream at all.
    if (this.stream === undefined && this.coding === undefined) return this.queue.all();
    const parts: Uint8Array[] = [];
    const reader = (this.body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
    return Buffer.concat(parts);
  }
}

/**
 * The dispatch handler of one fetch: resolves a {@link LeanResponse} at the headers, then feeds its
 * body queue from the socket. It uses the callbacks undici's own `request()` uses (`onConnect`,
 * `onHeaders`, `onData`, `onComplete`, `onError`), which the pool calls with no adapter between.
 */
class LeanFetchHandler implements Dispatcher.DispatchHandler {
  private abortRequest: ((err?: Error) => void) | undefined;
  private queue: BodyQueue | undefined;
  private resume: (() => void) | undefined;
  private settled = false;
  private done = false;
  private reason: unknown;

  constructor(
    private readonly url: string,
    private readonly method: string,
    private readonly signal: AbortSignal | undefined,
    private readonly resolve: (res: Response) => void,
    private readonly reject: (err: unknown) => void,
    /** Maps an error while the body streams (idle timeout, upstream gone) to the client's typed error. */
    private readonly bodyError: (err: unknown) => unknown,
  ) {
    if (signal !== undefined) signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The caller's signal: cancel the upstream request and fail the pending promise or the body. */
  private readonly onAbort = (): void => {
    this.reason = this.signal?.reason;
    this.abortRequest?.(abortError(this.reason));
    this.finish(this.reason);
  };

  onConnect(abort: (err?: Error) => void): void {
    this.abortRequest = abort;
    if (this.signal?.aborted === true) abort(abortError(this.signal.reason));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx answers are informational: the final one follows.
    if (statusCode < 200) return true;
    const hasBody = this.method !== 'HEAD' && !NULL_BODY_STATUSES.has(statusCode);
    if (hasBody) {
      this.resume = resume;
      this.queue = new BodyQueue((reason) => {
        // The reader gave up (an SDK cancelling a stream, a caller gone): stop the upstream.
        this.done = true;
        this.cleanup();
        this.abortRequest?.(abortError(reason));
      });
    }
    let response: LeanResponse;
    try {
      const coding = hasBody ? codingOf(rawHeaders) : undefined;
      response = new LeanResponse(this.queue, coding, this.url, statusCode, statusText);
      const headers = response.headers;
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        // Field bytes are latin1 on the wire (Fetch "isomorphic decode").
        headers.append(
          (rawHeaders[i] as Buffer).toString('latin1'),
          (rawHeaders[i + 1] as Buffer).toString('latin1'),
        );
      }
    } catch (err) {
      // A status or a header fetch cannot represent: a network error, as fetch reports it.
      this.abortRequest?.(err as Error);
      this.finish(err);
      return false;
    }
    this.settled = true;
    this.resolve(response as unknown as Response);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.done || this.queue === undefined) return true;
    return this.queue.push(chunk, this.resume as () => void);
  }

  onComplete(): void {
    if (this.done) return;
    this.done = true;
    this.queue?.end();
    this.cleanup();
  }

  onError(err: Error): void {
    if (this.done) return;
    this.finish(this.reason ?? err);
  }

  /** Settle once: reject the promise (with the abort reason, or undici's error), or fail the body. */
  private finish(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.cleanup();
    if (!this.settled) {
      this.settled = true;
      this.reject(err);
      return;
    }
    // Typed even after a caller abort, as the client always did: an SDK ends a stream quietly on
    // an `AbortError`, and a cut generation must not read as a finished one.
    this.queue?.fail(this.bodyError(err));
  }

  private cleanup(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}

/** The abort reason undici gets: an `Error` (a signal's reason may be any value). */
function abortError(reason: unknown): Error {
  if (reason instanceof Error) return reason;
  return new DOMException('This operation was aborted', 'AbortError');
}

/** The `content-encoding` of a response when fetch would decode it (one coding it knows). */
function codingOf(rawHeaders: Buffer[]): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as Buffer;
    if (name.length !== 16 || name.toString('latin1').toLowerCase() !== 'content-encoding') continue;
    const value = (rawHeaders[i + 1] as Buffer).toString('latin1');
    return decoderFor(value) !== undefined ? value : undefined;
  }
  return undefined;
}

/** A decoder for one content coding fetch decodes; undefined for others (and lists), left as sent. */
function decoderFor(coding: string): Duplex | undefined {
  const c = coding.trim().toLowerCase();
  if (c === 'gzip' || c === 'x-gzip') return createGunzip();
  if (c === 'deflate') return createInflate();
  if (c === 'br') return createBrotliDecompress();
  return undefined;
}

function decoded(body: ReadableStream<Uint8Array>, coding: string): ReadableStream<Uint8Array> {
  const decoder = decoderFor(coding);
  if (decoder === undefined) return body;
  const pair = Duplex.toWeb(decoder) as unknown as {
    readable: ReadableStream<Uint8Array>;
    writable: WritableStream<Uint8Array>;
  };
  return body.pipeThrough(pair);
}

/**
 * Send one request through `dispatcher` and resolve with a `Response` at the headers, its body
 * streaming from the socket. Rejects with undici's error (or the signal's reason after an abort)
 * before the headers; a failure while the body streams errors the body with `bodyError(err)`.
 * Never follows a redirect.
 */
export function leanFetch(
  dispatcher: Dispatcher,
  target: { readonly origin: string; readonly path: string; readonly url: string },
  req: LeanFetchRequest,
  bodyError: (err: unknown) => unknown,
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const signal = req.signal;
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const handler = new LeanFetchHandler(target.url, req.method, signal, resolve, reject, bodyError);
    const opts: Dispatcher.DispatchOptions = {
      origin: target.origin,
      path: target.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: req.headers,
      body: req.body as Dispatcher.DispatchOptions['body'],
    };
    try {
      dispatcher.dispatch(opts, handler);
    } catch (err) {
      // undici refuses the options synchronously (an invalid header, say).
      reject(err);
    }
  });
}
