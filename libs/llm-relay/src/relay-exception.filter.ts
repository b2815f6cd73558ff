import type { ServerResponse } from 'node:http';
import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { toRelayHttpError } from './openai-error.js';

/** An Express `res` or a Fastify `reply` (whose `raw` is Node's response). */
type AnyResponse = ServerResponse | { readonly raw: ServerResponse };

/**
 * Answers every error of the relay's own routes in OpenAI's shape (`{"error":{message, type,
 * param, code}}`). Bound with `@UseFilters` on the relay's controllers only: the host app's other
 * routes keep their own error format. Identity's refusals (raised by the global guard on these
 * routes) come here too, with their status and `WWW-Authenticate` challenge.
 */
@Catch()
export class RelayExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('LlmRelay');

  catch(err: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw err;
    const out = toRelayHttpError(err);
    if (out.code === 'ERR_INTERNAL') {
      // Name and first frame: a library message can quote its input (a prompt, a header).
      const frame = err instanceof Error ? (err.stack?.split('\n')[1]?.trim() ?? '') : '';
      this.logger.error(`unhandled ${err instanceof Error ? err.name : typeof err} ${frame}`);
    }
    const given = host.switchToHttp().getResponse<AnyResponse>();
    const res = 'raw' in given ? given.raw : given;
    if (res.headersSent) {
      // A stream already started: its status is gone; the relay ends streams itself, so this is
      // a failure after that point. Cutting is the only honest signal.
      if (!res.writableEnded) res.destroy();
      return;
    }
    const json = JSON.stringify(out.body);
    res.statusCode = out.status;
    for (const [name, value] of Object.entries(out.headers)) res.setHeader(name, value);
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('content-length', Buffer.byteLength(json));
    if ('raw' in given && typeof (given as { hijack?: unknown }).hijack === 'function')
      (given as unknown as { hijack(): void }).hijack();
    res.end(json);
  }
}
