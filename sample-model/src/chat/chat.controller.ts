import { once } from 'node:events';
import { Body, Controller, HttpCode, Inject, Logger, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import OpenAI from 'openai';
import { ERROR_CATALOGUE, isShieldError, ShieldError } from '@inference-shield/core';
import { Consumes } from '@inference-shield/https';
import { RequireScopes } from '@inference-shield/identity';
import { InjectUpstreamRegistry, type UpstreamRegistry } from '@inference-shield/upstream';
import { validateChatRequest } from './chat-request.validation.js';
import { CHAT_OPTIONS, LLM_UPSTREAM, type ChatOptions } from './chat.constants.js';

/**
 * `POST /v1/chat/completions`: the caller's prompt goes to the hosted LLM through the OpenAI SDK,
 * whose `fetch` is our pinned, pooled mTLS upstream client; the caller's identity travels as a
 * short-lived signed assertion, never as the caller's own token. Streams back when asked.
 */
@Controller('v1')
export class ChatController {
  private readonly openai: OpenAI;
  private readonly logger = new Logger('ChatController');

  constructor(
    @InjectUpstreamRegistry() private readonly upstreams: UpstreamRegistry,
    @Inject(CHAT_OPTIONS) private readonly options: ChatOptions,
  ) {
    const llm = upstreams.client(LLM_UPSTREAM);
    this.openai = new OpenAI({
      baseURL: llm.baseUrl,
      // The upstream client replaces Authorization with the key it was configured with; the SDK
      // insists on a value, and this one never leaves the process.
      apiKey: 'replaced-by-the-upstream-client',
      fetch: llm.fetch,
      // A retry re-sends a prompt and pays twice; the caller decides whether to retry.
      maxRetries: 0,
      timeout: 120_000,
    });
  }

  @RequireScopes('llm:chat')
  @Consumes('application/json')
  @Post('chat/completions')
  @HttpCode(200)
  async complete(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const chat = validateChatRequest(body);
    const assertion = await this.upstreams.callerAssertionFor(req, LLM_UPSTREAM);
    const headers = assertion ? { [assertion.header]: assertion.value } : {};
    // The caller hanging up cancels the upstream generation, which would otherwise keep costing; so
    // does a stream ended by someone else (the HTTPS bootstrap ends open streams at shutdown).
    const abort = new AbortController();
    let answered = false;
    const onClose = (): void => {
      if (!answered) abort.abort();
    };
    res.once('close', onClose);
    const params = {
      model: chat.model ?? this.options.model,
      messages: [...chat.messages],
      ...(chat.max_tokens !== undefined ? { max_tokens: chat.max_tokens } : {}),
      ...(chat.temperature !== undefined ? { temperature: chat.temperature } : {}),
    };
    try {
      if (!chat.stream) {
        const completion = await this.openai.chat.completions.create(
          { ...params, stream: false },
          { signal: abort.signal, headers },
        );
        answered = true;
        res.status(200).json(completion);
        return;
      }
      const stream = await this.openai.chat.completions.create(
        { ...params, stream: true, stream_options: { include_usage: true } },
        { signal: abort.signal, headers },
      );
      res.status(200);
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.setHeader('X-Accel-Buffering', 'no');
      res.flushHeaders();
      try {
        for await (const chunk of stream) {
          // A caller that stops reading, then hangs up, never drains: the abort ends the wait.
          if (!res.write(`data: ${JSON.stringify(chunk)}\n\n`)) {
            await once(res, 'drain', { signal: abort.signal });
          }
        }
        answered = true;
        res.end('data: [DONE]\n\n');
      } catch (err) {
        // Headers are gone: end the stream with an error event carrying only our code.
        if (!res.writableEnded && !abort.signal.aborted) {
          const refusal = upstreamError(err);
          this.logFailure(refusal, err);
          res.end(`data: ${JSON.stringify({ error: { code: refusal.code } })}\n\n`);
        }
      }
    } catch (err) {
      const refusal = upstreamError(err);
      this.logFailure(refusal, err);
      throw refusal;
    } finally {
      res.off('close', onClose);
    }
  }

  /**
   * An upstream failure the caller gets as a 5xx (502, 504) is an operator's problem: one line with
   * the code, the upstream's name, the class of the error that caused it and the upstream's status,
   * never a message (the SDK's quotes the upstream's body), the prompt or the output.
   */
  private logFailure(refusal: ShieldError, err: unknown): void {
    if (ERROR_CATALOGUE[refusal.code].status < 500) return;
    const cause = err instanceof OpenAI.APIError && isShieldError(err.cause) ? err.cause : err;
    const causeClass = cause === refusal ? className(refusal.cause) : className(cause);
    const status =
      err instanceof OpenAI.APIError && typeof err.status === 'number'
        ? `, upstream status ${err.status}`
        : '';
    this.logger.warn(`upstream "${LLM_UPSTREAM}" failed: ${refusal.code} (${causeClass}${status})`);
  }
}

/** The class of an error (or the type of a non-error), the only thing logged about it. */
function className(value: unknown): string {
  if (value instanceof Error) return value.constructor.name;
  return value === undefined ? 'no cause' : typeof value;
}

/** The SDK wraps our typed fetch errors; unwrap them, and map upstream HTTP errors to one code. */
function upstreamError(err: unknown): ShieldError {
  if (isShieldError(err)) return err;
  if (err instanceof OpenAI.APIError) {
    const cause = (err as { cause?: unknown }).cause;
    if (isShieldError(cause)) return cause;
    if (err instanceof OpenAI.APIUserAbortError)
      return new ShieldError('ERR_UPSTREAM_ABORTED', { cause: err });
    if (err instanceof OpenAI.APIConnectionTimeoutError)
      return new ShieldError('ERR_UPSTREAM_TIMEOUT', { cause: err });
    return new ShieldError('ERR_UPSTREAM_BAD_RESPONSE', {
      cause: err,
      detail: `upstream status ${err.status ?? '?'}`,
    });
  }
  return new ShieldError('ERR_UPSTREAM_BAD_RESPONSE', { cause: err });
}
