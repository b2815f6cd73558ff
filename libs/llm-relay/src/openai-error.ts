import { HttpException } from '@nestjs/common';
import {
  codeOf,
  ERROR_CATALOGUE,
  isShieldError,
  ShieldError,
  toHttpResponse,
  type ShieldErrorCode,
} from '@inference-shield/core/internal';

/** OpenAI's error body: what the `openai` SDKs read into their typed errors. */
export interface OpenAiErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: string;
    readonly param: string | null;
    readonly code: string | null;
  };
}

/**
 * A refusal of the relay, ready for the wire in OpenAI's shape: the status the SDK maps to its
 * typed errors, headers (`Retry-After`, `x-ratelimit-*`, `WWW-Authenticate`), and the Shield code
 * kept for logs and usage events (an upstream's own 4xx keeps the upstream's code in the body).
 */
export class RelayHttpError extends Error {
  override readonly name = 'RelayHttpError';
  constructor(
    readonly status: number,
    readonly body: OpenAiErrorBody,
    readonly headers: Readonly<Record<string, string>>,
    readonly code: ShieldErrorCode,
    options: { cause?: unknown } = {},
  ) {
    super(body.error.message, options);
  }
}

/** OpenAI's error `type` for a status (the SDK reads the status; the type is for people). */
export function errorTypeOf(status: number, code?: ShieldErrorCode): string {
  if (code === 'ERR_LLM_REQUESTS_EXCEEDED') return 'requests';
  if (code === 'ERR_LLM_TOKENS_EXCEEDED') return 'tokens';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * The body of a refusal IdentityModule answers before the relay's filter can run (a request with a
 * body and a missing or invalid credential, refused on its headers): OpenAI's shape, our code.
 */
export function openAiRefusalBody(facts: {
  readonly status: number;
  readonly code: ShieldErrorCode;
  readonly message: string;
}): OpenAiErrorBody {
  return {
    error: {
      message: facts.message,
      type: errorTypeOf(facts.status, facts.code),
      param: null,
      code: facts.code,
    },
  };
}

/** A relay refusal with a catalogue code: message from the catalogue (or `message`), never a library's. */
export function relayError(
  code: ShieldErrorCode,
  opts: { param?: string; message?: string; headers?: Record<string, string>; cause?: unknown } = {},
): RelayHttpError {
  const entry = ERROR_CATALOGUE[code];
  return new RelayHttpError(
    entry.status,
    {
      error: {
        message: opts.message ?? entry.reason,
        type: errorTypeOf(entry.status, code),
        param: opts.param ?? null,
        code,
      },
    },
    opts.headers ?? {},
    code,
    { cause: opts.cause },
  );
}

/** Status codes Nest's `HttpException`s use, to the catalogue's code. */
function httpExceptionCode(err: HttpException): ShieldErrorCode {
  const code = codeOf(err);
  return code === 'ERR_INTERNAL' && err.getStatus() < 500 ? 'ERR_BAD_REQUEST' : code;
}

/**
 * Any error on a relay route, in OpenAI's shape. A `ShieldError` keeps its catalogue status and
 * challenge headers (401 `WWW-Authenticate`), with its code in `error.code`; a forbidden model is
 * answered as an unknown one; an unknown error is a 500 `ERR_INTERNAL`, its message never sent.
 */
export function toRelayHttpError(err: unknown): RelayHttpError {
  if (err instanceof RelayHttpError) return err;
  if (isShieldError(err)) {
    const code = err.code === 'ERR_LLM_MODEL_FORBIDDEN' ? 'ERR_LLM_MODEL_NOT_FOUND' : err.code;
    const shaped = toHttpResponse(code === err.code ? err : new ShieldError(code, { cause: err }));
    return new RelayHttpError(
      shaped.status,
      {
        error: {
          message: shaped.body.detail ?? shaped.body.message,
          type: errorTypeOf(shaped.status, code),
          param: null,
          code,
        },
      },
      shaped.headers,
      code,
      { cause: err },
    );
  }
  if (err instanceof HttpException) {
    const code = httpExceptionCode(err);
    return relayError(code, { cause: err });
  }
  return relayError('ERR_INTERNAL', { cause: err });
}
