/**
 * RFC 6749 5.2 error answers for the failures oidc-provider's own JSON error path does not shape.
 *
 * oidc-provider already answers a token request whose body it refuses (another content type, a
 * body over its 56 KiB cap, a missing `grant_type`) with `400 {"error":"invalid_request"}` and
 * `Cache-Control: no-store`. Two cases escaped that path and gave a client something else:
 *
 * - A client whose `Accept` header prefers `text/html` got oidc-provider's HTML error page:
 *   {@link renderJsonError} replaces it (the dev IdP has no page a person is meant to read).
 * - A request Node's HTTP parser refuses (broken chunked framing, a body cut short, a bad
 *   `Content-Length`, headers too large, a request too slow) never reaches oidc-provider; Node
 *   answered a bare `400 Bad Request` with no body. {@link answerClientError} sends the JSON
 *   error instead.
 *
 * Neither ever repeats what the client sent: the descriptions are fixed strings.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorOut, KoaContextWithOIDC } from 'oidc-provider';

/**
 * oidc-provider's `renderError` hook: the error object it would have sent as JSON, as JSON, and
 * never the HTML page it renders by default for clients that prefer `text/html`. oidc-provider has
 * already set the status (and, on the token endpoint, `Cache-Control: no-store`) when it calls this.
 */
export function renderJsonError(ctx: KoaContextWithOIDC, out: ErrorOut): void {
  ctx.type = 'json';
  ctx.body = out;
}

/** Status, reason phrase and `error_description` of a request Node's HTTP parser refused. */
type ParserRefusal = readonly [status: number, reason: string, description: string];

const MALFORMED: ParserRefusal = [400, 'Bad Request', 'malformed HTTP request'];

// The statuses Node itself uses for these codes (lib/_http_server.js socketOnError); every
// other parser error (chunked framing, Content-Length, a body cut short, ...) is a 400.
const REFUSALS: ReadonlyMap<string, ParserRefusal> = new Map([
  ['HPE_HEADER_OVERFLOW', [431, 'Request Header Fields Too Large', 'request headers are too large']],
  ['HPE_CHUNK_EXTENSIONS_OVERFLOW', [413, 'Content Too Large', 'chunk extensions are too large']],
  ['ERR_HTTP_REQUEST_TIMEOUT', [408, 'Request Timeout', 'request not received in time']],
]);

function rawResponse([status, reason, description]: ParserRefusal): string {
  const body = JSON.stringify({ error: 'invalid_request', error_description: description });
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Cache-Control: no-store\r\n' +
    'Connection: close\r\n' +
    '\r\n' +
    body
  );
}

// Built once: the error path allocates nothing per refused request.
const RAW_MALFORMED = rawResponse(MALFORMED);
const RAW_REFUSALS: ReadonlyMap<string, string> = new Map(
  [...REFUSALS].map(([code, refusal]) => [code, rawResponse(refusal)]),
);

/**
 * The complete HTTP/1.1 response (status line, headers, JSON body) for a request Node's parser
 * refused with `code`: an RFC 6749 5.2 `invalid_request` object, `Cache-Control: no-store`, and
 * `Connection: close` (the connection cannot be parsed any further).
 */
export function clientErrorResponse(code: string | undefined): string {
  return (code !== undefined ? RAW_REFUSALS.get(code) : undefined) ?? RAW_MALFORMED;
}

/**
 * The response whose bytes are going to each connection now. Node writes the responses of
 * pipelined requests in order, one at a time, so that is the oldest response of the connection not
 * yet closed; a later one (a pipelined request's) is only buffered. This is what Node's own
 * `clientError` default reads from the socket's internal `_httpMessage`.
 */
export class ResponsesInFlight {
  private readonly queues = new WeakMap<Duplex, ServerResponse[]>();

  /** Call from the request listener, for every request. */
  track(socket: Duplex, res: ServerResponse): void {
    let queue = this.queues.get(socket);
    if (queue === undefined) {
      queue = [];
      this.queues.set(socket, queue);
    }
    const list = queue;
    list.push(res);
    // 'close': the response is complete, or its connection is gone.
    res.once('close', () => {
      const at = list.indexOf(res);
      if (at !== -1) list.splice(at, 1);
    });
  }

  /** The response being written on `socket`, if any. */
  current(socket: Duplex): ServerResponse | undefined {
    return this.queues.get(socket)?.[0];
  }
}

/**
 * The server's `clientError` listener. Like Node's default, it writes only when the response being
 * written on the socket (`inFlight`, from {@link ResponsesInFlight.current}) has not started:
 * bytes written into the middle of another response would corrupt it. Then it drops the connection.
 */
export function answerClientError(
  err: NodeJS.ErrnoException,
  socket: Duplex,
  inFlight: ServerResponse | undefined,
): void {
  const midResponse = inFlight !== undefined && inFlight.headersSent && !inFlight.writableEnded;
  if (err.code !== 'ECONNRESET' && socket.writable && !midResponse) {
    // End, then destroy after a moment, as the bootstrap does: destroying at once, with the rest
    // of an oversized request still unread, makes the kernel send a reset that can overtake the
    // answer (the client then sees no status at all).
    socket.end(clientErrorResponse(err.code));
    setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref();
    return;
  }
  socket.destroy();
}

/** How long a refused client may take to read the answer before its connection is destroyed. */
const CLIENT_ERROR_LINGER_MS = 1000;
