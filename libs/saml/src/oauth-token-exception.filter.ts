import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { toOAuthErrorResponse } from './oauth-error.mapping.js';

/**
 * Answers token endpoint refusals in the RFC 6749 §5.2 shape (see {@link toOAuthErrorResponse}).
 * Bound to the token route only; every other route keeps `ShieldExceptionFilter`.
 */
@Catch()
export class OAuthTokenExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('ShieldSaml');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(err: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw err;
    const res = host.switchToHttp().getResponse<unknown>();
    const response = toOAuthErrorResponse(err);
    if (response.body.error === 'server_error') {
      // Name only: a library message may quote the assertion.
      this.logger.error(`token endpoint: unhandled ${err instanceof Error ? err.name : typeof err}`);
    }
    const adapter = this.adapterHost.httpAdapter;
    for (const [name, value] of Object.entries(response.headers)) adapter.setHeader(res, name, value);
    adapter.reply(res, response.body, response.status);
  }
}
