import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEV_SERVER_TLS_POLICY, loadTlsBundle, refusePlaintext } from '@inference-shield/core/internal';
import {
  complete,
  countInputTokens,
  countPromptTokens,
  embed,
  MAX_COMPLETION_TOKENS,
  type StandinCompletion,
} from './standin-model.js';
import { RequestError } from './standin-errors.js';
import {
  messageItem,
  outputTextPart,
  readResponsesRequest,
  responseIds,
  responseObject,
  responsesEvent,
  responsesUsage,
} from './standin-responses.js';
import { StandinTokenEndpoint, type StandinTokenEndpointOptions } from './standin-token.endpoint.js';

/** Options of {@link createLlmStandin}. */
export interface LlmStandinOptions {
  /** Port; default 9444, `0` for any free port. */
  port?: number;
  /** Address to listen on; default `127.0.0.1`. */
  host?: string;
  /** Server certificate and key (PEM files), e.g. the dev PKI's `localhost.pem`. */
  cert: string;
  key: string;
  /** CA whose client certificates are accepted (mTLS is required). */
  ca: string;
  /** Optional CRL of that CA. */
  crl?: string;
  /** Accepted API keys (`Authorization: Bearer <key>`); at least one unless `tokenEndpoint` is set. */
  apiKeys?: readonly string[];
  /** Serve `POST /oauth/token` (token exchange: a JWT or the client certificate) and accept its tokens. */
  tokenEndpoint?: StandinTokenEndpointOptions;
  /** Accept only tokens the token endpoint issued; API keys are refused. Default `false`. */
  requireIssuedTokens?: boolean;
  /** Pause before each streamed token, in ms; default 0. */
  tokenDelayMs?: number;
  /** Default embedding size; default 8 (a request's `dimensions` overrides it, up to 3072). */
  embeddingDimensions?: number;
  /**
   * Keep the last 100 requests' method, path and headers in `requests`, and emit each as a `request`
   * event (tests only: in-process, nothing of it is served).
   */
  recordRequests?: boolean;
  /** The 429 mode from the start (switch it later with `setRateLimited`). */
  rateLimited?: StandinRateLimit;
}

/**
 * The 429 mode: calls for these models are answered `429` with `retry-after` and OpenAI's
 * `rate_limit_exceeded` body, as a hosted LLM over its limit answers.
 */
export interface StandinRateLimit {
  /** Model ids, or `["*"]` for every model. */
  readonly models: readonly string[];
  /** Seconds in `retry-after`; default 1, from 0 to 86400. */
  readonly retryAfterSeconds?: number;
}

/** A stream that went out in full (emitted as `done`). */
export interface StandinStreamDone {
  readonly path: string;
  /** Tokens written. */
  readonly tokensSent: number;
}

/** The in-process events of a running stand-in (tests listen; nothing of it is on the network). */
export interface StandinEvents {
  /** A request arrived (only with `recordRequests`). */
  request: [RecordedRequest];
  /** A caller hung up before the answer was complete. */
  cancel: [StandinCancellation];
  /** A streamed answer was sent in full. */
  done: [StandinStreamDone];
}

/** What a test may ask a request it recorded. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Emitted as `cancel` when a caller hangs up before the answer is complete. */
export interface StandinCancellation {
  readonly path: string;
  /** Tokens written before the caller left. */
  readonly tokensSent: number;
}

/** Counters since start. */
export interface LlmStandinStats {
  requests: number;
  unauthorized: number;
  completions: number;
  streams: number;
  embeddings: number;
  /** Answers cut short because the caller hung up. */
  cancelled: number;
  /** TLS handshakes completed (with a verified client certificate). */
  handshakes: number;
  /** Calls answered 429 by the rate-limit mode. */
  rateLimited: number;
}

/** A running stand-in: its URL, counters, and `cancel` events. */
export interface LlmStandin {
  /** `https://localhost:<port>`, the base of `/v1/...`. */
  readonly url: string;
  readonly port: number;
  readonly stats: Readonly<LlmStandinStats>;
  readonly requests: readonly RecordedRequest[];
  readonly events: EventEmitter<StandinEvents>;
  readonly server: Server;
  /** Turn the 429 mode on (for these models) or off (`undefined`). */
  setRateLimited(limit: StandinRateLimit | undefined): void;
  /** The token endpoint, when configured (its counters, its `outage` switch). */
  readonly tokenEndpoint?: StandinTokenEndpoint;
  close(): Promise<void>;
}

/** Models the stand-in lists and accepts. */
export const STANDIN_MODELS = ['standin-chat', 'standin-embed', 'standin-long'] as const;

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_RECORDED = 100;
const MAX_EMBEDDING_INPUTS = 2048;
const MAX_DIMENSIONS = 3072;
const CREATED = 1_735_689_600; // 2025-01-01: fixed, so listings are deterministic

/**
 * Start the stand-in hosted LLM: an OpenAI-compatible HTTPS server (`GET /v1/models`,
 * `POST /v1/chat/completions` with and without `stream`, `POST /v1/embeddings`) that requires a
 * client certificate from `ca` and an API key. Output is derived from the prompt, so it is
 * deterministic; usage counts use the same tokenizer as the output.
 */
export async function createLlmStandin(options: LlmStandinOptions): Promise<LlmStandin> {
  const apiKeys = options.apiKeys ?? [];
  if (
    !Array.isArray(apiKeys) ||
    (apiKeys.length === 0 && options.tokenEndpoint === undefined) ||
    apiKeys.some((k) => typeof k !== 'string' || k.length < 8)
  ) {
    throw new TypeError(
      '"apiKeys" must hold at least one key of 8 characters or more (or set "tokenEndpoint")',
    );
  }
  if (options.requireIssuedTokens === true && options.tokenEndpoint === undefined) {
    throw new TypeError('"requireIssuedTokens" needs "tokenEndpoint"');
  }
  const tokens =
    options.tokenEndpoint !== undefined ? new StandinTokenEndpoint(options.tokenEndpoint) : undefined;
  const acceptApiKeys = options.requireIssuedTokens !== true;
  const tokenDelayMs = options.tokenDelayMs ?? 0;
  if (!Number.isInteger(tokenDelayMs) || tokenDelayMs < 0 || tokenDelayMs > 10_000) {
    throw new TypeError(`"tokenDelayMs" must be an integer from 0 to 10000, got ${String(tokenDelayMs)}`);
  }
  const dimensions = options.embeddingDimensions ?? 8;
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_DIMENSIONS) {
    throw new TypeError(`"embeddingDimensions" must be an integer from 1 to ${MAX_DIMENSIONS}`);
  }
  let rateLimited = checkRateLimit(options.rateLimited);
  const port = options.port ?? 9444;
  const files =
    options.crl !== undefined
      ? { cert: options.cert, key: options.key, ca: options.ca, crl: options.crl }
      : { cert: options.cert, key: options.key, ca: options.ca };
  const bundle = loadTlsBundle(files, { usage: 'server' });
  // Keys are compared as digests in constant time: no timing oracle on a prefix match.
  const keyDigests = apiKeys.map((k) => createHash('sha256').update(k).digest());

  const stats: LlmStandinStats = {
    requests: 0,
    unauthorized: 0,
    completions: 0,
    streams: 0,
    embeddings: 0,
    cancelled: 0,
    handshakes: 0,
    rateLimited: 0,
  };
  const recorded: RecordedRequest[] = [];
  const events = new EventEmitter<StandinEvents>();

  const server = createServer(
    {
      cert: bundle.cert,
      key: bundle.key,
      ...(bundle.ca !== undefined ? { ca: bundle.ca } : {}),
      // Every CRL of the file, each checked by the loader (Node reads only the first of a PEM string).
      ...(bundle.crls && bundle.crls.length > 0 ? { crl: [...bundle.crls] } : {}),
      // A hosted LLM's mTLS endpoint: no verified client certificate, no handshake.
      requestCert: true,
      rejectUnauthorized: true,
      // Our own policy, not Node's defaults (which offer CBC suites, so Lucky13 was reported, and
      // let a client renegotiate): TLS 1.2+, ECDHE with AEAD suites only, no renegotiation.
      ...DEV_SERVER_TLS_POLICY,
      handshakeTimeout: 10_000,
      headersTimeout: 10_000,
      requestTimeout: 60_000,
      keepAliveTimeout: 30_000,
    },
    (req, res) => {
      stats.requests++;
      if (options.recordRequests === true) {
        const entry = { method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers } };
        recorded.push(entry);
        if (recorded.length > MAX_RECORDED) recorded.shift();
        events.emit('request', entry);
      }
      handle(req, res).catch((err: unknown) => {
        if (err instanceof RequestError) return sendError(res, err);
        sendError(
          res,
          new RequestError(
            500,
            'The server had an error while processing your request.',
            'server_error',
            null,
          ),
        );
      });
    },
  );
  // Plain HTTP to the TLS port gets the bootstrap's coded 400 instead of a closed socket.
  const gate = refusePlaintext(server, 10_000);
  server.on('secureConnection', () => stats.handshakes++);
  // A refused handshake (no or bad client certificate) is the expected outcome, not a crash.
  server.on('tlsClientError', () => undefined);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The token endpoint authenticates with the subject token or the client certificate, not a key.
    if (tokens?.handles(req.method, new URL(req.url ?? '/', 'https://standin.invalid').pathname) === true) {
      return tokens.handle(req, res);
    }
    if (!authorized(req.headers.authorization)) {
      stats.unauthorized++;
      throw new RequestError(401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    }
    const url = new URL(req.url ?? '/', 'https://standin.invalid');
    const route = `${req.method ?? ''} ${url.pathname}`;
    if (route === 'GET /v1/models') {
      return sendJson(res, 200, { object: 'list', data: STANDIN_MODELS.map(modelObject) });
    }
    if (req.method === 'GET' && url.pathname.startsWith('/v1/models/')) {
      const id = decodeURIComponent(url.pathname.slice('/v1/models/'.length));
      if (!(STANDIN_MODELS as readonly string[]).includes(id)) throw modelNotFound(id);
      return sendJson(res, 200, modelObject(id));
    }
    if (route === 'POST /v1/chat/completions') return chat(req, res, overLimit(await readJson(req)));
    if (route === 'POST /v1/responses') return responses(req, res, overLimit(await readJson(req)));
    if (route === 'POST /v1/embeddings') return embeddings(res, overLimit(await readJson(req)));
    throw new RequestError(
      404,
      `Invalid URL (${req.method ?? ''} ${url.pathname})`,
      'invalid_request_error',
      'unknown_url',
    );
  }

  function authorized(header: string | undefined): boolean {
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header ?? '');
    if (m === null || m[1] === undefined) return false;
    if (tokens?.verify(m[1]) !== undefined) return true;
    if (!acceptApiKeys) return false;
    const digest = createHash('sha256').update(m[1]).digest();
    let ok = false;
    for (const d of keyDigests) ok = timingSafeEqual(d, digest) || ok;
    return ok;
  }

  async function chat(
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
  ): Promise<void> {
    const model = requireModel(body.model);
    const messages = body.messages;
    if (
      !Array.isArray(messages) ||
      messages.length === 0 ||
      messages.some((m) => typeof m !== 'object' || m === null)
    ) {
      throw new RequestError(
        400,
        "'messages' must be a non-empty array of messages",
        'invalid_request_error',
        null,
        'messages',
      );
    }
    const maxRaw = body.max_completion_tokens ?? body.max_tokens;
    let maxTokens: number | undefined;
    if (maxRaw !== undefined && maxRaw !== null) {
      if (!Number.isInteger(maxRaw) || (maxRaw as number) < 1 || (maxRaw as number) > MAX_COMPLETION_TOKENS) {
        throw new RequestError(
          400,
          `'max_tokens' must be an integer from 1 to ${MAX_COMPLETION_TOKENS}`,
          'invalid_request_error',
          null,
          'max_tokens',
        );
      }
      maxTokens = maxRaw as number;
    }
    const msgs = messages as { role?: unknown; content?: unknown }[];
    const completion = complete(model, msgs, maxTokens);
    const promptTokens = countPromptTokens(msgs);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completion.tokens.length,
      total_tokens: promptTokens + completion.tokens.length,
    };
    const created = Math.floor(Date.now() / 1000);
    const path = req.url ?? '';
    if (body.stream === true) {
      stats.streams++;
      const includeUsage =
        (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
      return streamChat(res, path, model, created, completion, includeUsage ? usage : undefined);
    }
    // A non-streamed answer takes as long as generating it would.
    if (tokenDelayMs > 0) {
      const gone = waitForHangUp(res);
      for (let i = 0; i < completion.tokens.length && !gone.value; i++) await sleep(tokenDelayMs);
      if (gone.value) return cancelled(path, 0);
    }
    stats.completions++;
    return sendJson(res, 200, {
      id: completion.id,
      object: 'chat.completion',
      created,
      model,
      system_fingerprint: 'fp_standin',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: completion.tokens.join(' '), refusal: null },
          logprobs: null,
          finish_reason: completion.finishReason,
        },
      ],
      usage,
    });
  }

  async function streamChat(
    res: ServerResponse,
    path: string,
    model: string,
    created: number,
    completion: StandinCompletion,
    usage: Record<string, number> | undefined,
  ): Promise<void> {
    const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
      `data: ${JSON.stringify({
        id: completion.id,
        object: 'chat.completion.chunk',
        created,
        model,
        system_fingerprint: 'fp_standin',
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        // With include_usage, OpenAI sends `usage: null` on every chunk but the last.
        ...(usage !== undefined ? { usage: null } : {}),
      })}\n\n`;
    res.writeHead(200, {
      ...commonHeaders(model),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
    });
    res.flushHeaders();
    const gone = waitForHangUp(res);
    let sent = 0;
    const write = async (text: string): Promise<boolean> => {
      if (gone.value) return false;
      if (!res.write(text)) await drainOrClose(res);
      return !gone.value;
    };
    if (!(await write(chunk({ role: 'assistant', content: '', refusal: null }, null))))
      return cancelled(path, sent);
    for (const [i, token] of completion.tokens.entries()) {
      if (tokenDelayMs > 0) await Promise.race([sleep(tokenDelayMs), gone.promise]);
      if (!(await write(chunk({ content: i === 0 ? token : ` ${token}` }, null))))
        return cancelled(path, sent);
      sent++;
    }
    if (!(await write(chunk({}, completion.finishReason)))) return cancelled(path, sent);
    if (usage !== undefined) {
      const last = `data: ${JSON.stringify({ id: completion.id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_standin', choices: [], usage })}\n\n`;
      if (!(await write(last))) return cancelled(path, sent);
    }
    stats.completions++;
    events.emit('done', { path, tokensSent: sent });
    res.end('data: [DONE]\n\n');
  }

  function cancelled(path: string, tokensSent: number): void {
    stats.cancelled++;
    events.emit('cancel', { path, tokensSent });
  }

  /** The 429 mode: a known model marked over its limit is refused as a hosted LLM does. */
  function overLimit(body: Record<string, unknown>): Record<string, unknown> {
    const model = body.model;
    if (
      rateLimited !== undefined &&
      typeof model === 'string' &&
      (STANDIN_MODELS as readonly string[]).includes(model) &&
      (rateLimited.models.includes('*') || rateLimited.models.includes(model))
    ) {
      stats.rateLimited++;
      const after = rateLimited.retryAfterSeconds ?? 1;
      throw new RequestError(
        429,
        `Rate limit reached for ${model} in organization standin-org on requests per min (RPM): Limit 1, Used 1, Requested 1. Please try again in ${after}s.`,
        'requests',
        'rate_limit_exceeded',
        null,
        {
          'retry-after': String(after),
          'retry-after-ms': String(after * 1000),
          'x-ratelimit-limit-requests': '1',
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': `${after}s`,
        },
      );
    }
    return body;
  }

  /** `POST /v1/responses`, streamed (OpenAI's event sequence) or not. */
  async function responses(
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
  ): Promise<void> {
    const model = requireModel(body.model);
    const request = readResponsesRequest(body);
    const completion = complete(model, request.messages, request.maxOutputTokens);
    const usage = responsesUsage(countPromptTokens(request.messages), completion.tokens.length);
    const ids = responseIds(completion);
    const createdAt = Math.floor(Date.now() / 1000);
    const text = completion.tokens.join(' ');
    // Stopped by max_output_tokens: OpenAI's status is `incomplete` (event `response.incomplete`).
    const final = completion.finishReason === 'length' ? 'incomplete' : 'completed';
    const path = req.url ?? '';
    const snapshot = (
      status: 'in_progress' | 'completed' | 'incomplete',
      output: readonly unknown[],
      u: typeof usage | null,
    ): Record<string, unknown> =>
      responseObject({ id: ids.response, model, createdAt, request, status, output, usage: u });
    if (!request.stream) {
      if (tokenDelayMs > 0) {
        const gone = waitForHangUp(res);
        for (let i = 0; i < completion.tokens.length && !gone.value; i++) await sleep(tokenDelayMs);
        if (gone.value) return cancelled(path, 0);
      }
      stats.completions++;
      return sendJson(res, 200, snapshot(final, [messageItem(ids.message, text, final)], usage));
    }
    stats.streams++;
    res.writeHead(200, {
      ...commonHeaders(model),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
    });
    res.flushHeaders();
    const gone = waitForHangUp(res);
    let sequence = 0;
    let sent = 0;
    const write = async (type: string, fields: Record<string, unknown>): Promise<boolean> => {
      if (gone.value) return false;
      if (!res.write(responsesEvent(type, sequence++, fields))) await drainOrClose(res);
      return !gone.value;
    };
    const at = { item_id: ids.message, output_index: 0, content_index: 0 };
    const opening: [string, Record<string, unknown>][] = [
      ['response.created', { response: snapshot('in_progress', [], null) }],
      ['response.in_progress', { response: snapshot('in_progress', [], null) }],
      ['response.output_item.added', { output_index: 0, item: messageItem(ids.message, '', 'in_progress') }],
      ['response.content_part.added', { ...at, part: outputTextPart('') }],
    ];
    for (const [type, fields] of opening) if (!(await write(type, fields))) return cancelled(path, sent);
    for (const [i, token] of completion.tokens.entries()) {
      if (tokenDelayMs > 0) await Promise.race([sleep(tokenDelayMs), gone.promise]);
      const delta = i === 0 ? token : ` ${token}`;
      if (!(await write('response.output_text.delta', { ...at, delta, logprobs: [] })))
        return cancelled(path, sent);
      sent++;
    }
    const item = messageItem(ids.message, text, final);
    const closing: [string, Record<string, unknown>][] = [
      ['response.output_text.done', { ...at, text, logprobs: [] }],
      ['response.content_part.done', { ...at, part: outputTextPart(text) }],
      ['response.output_item.done', { output_index: 0, item }],
      [`response.${final}`, { response: snapshot(final, [item], usage) }],
    ];
    for (const [type, fields] of closing) if (!(await write(type, fields))) return cancelled(path, sent);
    stats.completions++;
    events.emit('done', { path, tokensSent: sent });
    res.end();
  }

  function embeddings(res: ServerResponse, body: Record<string, unknown>): void {
    const model = requireModel(body.model);
    const inputs = embeddingInputs(body.input);
    let dims = dimensions;
    if (body.dimensions !== undefined) {
      if (
        !Number.isInteger(body.dimensions) ||
        (body.dimensions as number) < 1 ||
        (body.dimensions as number) > MAX_DIMENSIONS
      ) {
        throw new RequestError(
          400,
          `'dimensions' must be an integer from 1 to ${MAX_DIMENSIONS}`,
          'invalid_request_error',
          null,
          'dimensions',
        );
      }
      dims = body.dimensions as number;
    }
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') {
      throw new RequestError(
        400,
        "'encoding_format' must be 'float' or 'base64'",
        'invalid_request_error',
        null,
        'encoding_format',
      );
    }
    let tokens = 0;
    const data = inputs.map((input, index) => {
      tokens += countInputTokens(input);
      const v = embed(input, dims);
      return {
        object: 'embedding',
        index,
        embedding:
          format === 'base64'
            ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
            : Array.from(v),
      };
    });
    stats.embeddings++;
    sendJson(res, 200, {
      object: 'list',
      data,
      model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  function commonHeaders(model: string): Record<string, string> {
    return {
      'x-request-id': `req_${randomBytes(12).toString('hex')}`,
      'openai-version': '2020-10-01',
      'openai-model': model,
      'openai-processing-ms': '1',
      // Real hosted APIs send these; a proxy in front must not hand them to its callers.
      'openai-organization': 'standin-org',
      'set-cookie': '__cf_bm=standin; Path=/; Secure; HttpOnly',
    };
  }

  function sendJson(
    res: ServerResponse,
    status: number,
    payload: unknown,
    extraHeaders: Readonly<Record<string, string>> = {},
  ): void {
    const json = JSON.stringify(payload);
    const model =
      typeof (payload as { model?: unknown }).model === 'string'
        ? (payload as { model: string }).model
        : 'standin';
    res.writeHead(status, {
      ...commonHeaders(model),
      ...extraHeaders,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(json),
    });
    res.end(json);
  }

  function sendError(res: ServerResponse, err: RequestError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(
      res,
      err.status,
      { error: { message: err.message, type: err.type, param: err.param, code: err.code } },
      err.headers,
    );
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `https://localhost:${actualPort}`,
    port: actualPort,
    stats,
    requests: recorded,
    events,
    server,
    setRateLimited: (limit) => {
      rateLimited = checkRateLimit(limit);
    },
    ...(tokens !== undefined ? { tokenEndpoint: tokens } : {}),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        gate.destroyAll();
      }),
  };
}

function modelObject(id: string): Record<string, unknown> {
  return { id, object: 'model', created: CREATED, owned_by: 'inference-shield' };
}

function modelNotFound(id: string): RequestError {
  // OpenAI's words and shape (`param: null`); the id is cut, so a huge one is not echoed whole.
  return new RequestError(
    404,
    `The model \`${id.slice(0, 64)}\` does not exist or you do not have access to it.`,
    'invalid_request_error',
    'model_not_found',
    null,
  );
}

function checkRateLimit(value: unknown): StandinRateLimit | undefined {
  if (value === undefined) return undefined;
  const v = value as { models?: unknown; retryAfterSeconds?: unknown };
  if (
    typeof value !== 'object' ||
    value === null ||
    !Array.isArray(v.models) ||
    v.models.length === 0 ||
    !v.models.every((m) => typeof m === 'string' && m.length > 0)
  ) {
    throw new TypeError('"rateLimited.models" must be a non-empty array of model ids (or ["*"])');
  }
  const unknown = Object.keys(value).find((k) => k !== 'models' && k !== 'retryAfterSeconds');
  if (unknown !== undefined) throw new TypeError(`"rateLimited" has an unknown option "${unknown}"`);
  const after = v.retryAfterSeconds ?? 1;
  if (typeof after !== 'number' || !Number.isInteger(after) || after < 0 || after > 86_400) {
    throw new TypeError('"rateLimited.retryAfterSeconds" must be an integer from 0 to 86400');
  }
  return Object.freeze({ models: Object.freeze([...(v.models as string[])]), retryAfterSeconds: after });
}

function requireModel(model: unknown): string {
  if (typeof model !== 'string' || model.length === 0) {
    throw new RequestError(400, "'model' is required", 'invalid_request_error', null, 'model');
  }
  if (!(STANDIN_MODELS as readonly string[]).includes(model)) throw modelNotFound(model);
  return model;
}

function embeddingInputs(input: unknown): (string | number[])[] {
  const isTokens = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && t >= 0);
  let list: (string | number[])[];
  if (typeof input === 'string') list = [input];
  else if (isTokens(input)) list = [input];
  else if (
    Array.isArray(input) &&
    input.length > 0 &&
    input.every((v) => typeof v === 'string' || isTokens(v))
  )
    list = input as (string | number[])[];
  else
    throw new RequestError(
      400,
      "'input' must be a string, an array of strings, or token arrays",
      'invalid_request_error',
      null,
      'input',
    );
  if (list.length > MAX_EMBEDDING_INPUTS) {
    throw new RequestError(
      400,
      `'input' holds more than ${MAX_EMBEDDING_INPUTS} items`,
      'invalid_request_error',
      null,
      'input',
    );
  }
  return list;
}

/** Resolves when the socket can take more, or is gone (never rejects: no stray rejection). */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}

/** A flag set when the caller hangs up (the response closes before it finished). */
function waitForHangUp(res: ServerResponse): { value: boolean; promise: Promise<void> } {
  const state = { value: false, promise: Promise.resolve() };
  state.promise = new Promise<void>((resolve) => {
    res.once('close', () => {
      if (!res.writableFinished) state.value = true;
      resolve();
    });
  });
  return state;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new RequestError(415, 'Content-Type must be application/json', 'invalid_request_error', null);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new RequestError(413, 'Request body too large', 'invalid_request_error', null);
    chunks.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new RequestError(
      400,
      'We could not parse the JSON body of your request.',
      'invalid_request_error',
      null,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RequestError(400, 'The request body must be a JSON object.', 'invalid_request_error', null);
  }
  return parsed as Record<string, unknown>;
}
