import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { codeOf, toHttpResponse } from './http-error.mapping.js';

/**
 * Applies {@link toHttpResponse} to every error that reaches Nest, for Express and Fastify alike.
 * Internal errors are logged by name and code only: a library message can quote its input
 * (a token, a prompt), so it is never logged nor sent.
 */
@Catch()
export class ShieldExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Shield');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(err: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw err;
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<unknown>();
    const adapter = this.adapterHost.httpAdapter;
    const response = toHttpResponse(err);
    if (codeOf(err) === 'ERR_INTERNAL') {
      this.logger.error(`unhandled ${describe(err)}`);
    }
    if (isHeadersSent(res)) return;
    for (const [name, value] of Object.entries(response.headers)) adapter.setHeader(res, name, value);
    adapter.reply(res, response.body, response.status);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    // The first frame says where; the message (which may quote input) stays out of the log.
    const frame = err.stack?.split('\n')[1]?.trim() ?? '';
    return `${err.name} ${frame}`;
  }
  return typeof err;
}

function isHeadersSent(res: unknown): boolean {
  const r = res as { headersSent?: boolean; sent?: boolean; raw?: { headersSent?: boolean } };
  return Boolean(r.headersSent ?? r.sent ?? r.raw?.headersSent);
}
