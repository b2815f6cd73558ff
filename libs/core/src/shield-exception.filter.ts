import {
  Catch,
  HttpException,
  Logger,
  Optional,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { codeOf, toHttpResponse, type ChallengeParams } from './http-error.mapping.js';
import { isShieldError } from './shield.error.js';

/**
 * What `@Catch(...)` matches for {@link ShieldExceptionFilter}: Nest selects a filter with
 * `exception instanceof Metatype`, so these classes answer `instanceof` by shape.
 *
 * - A `ShieldError` of any copy of this package (the CommonJS and the ESM build of
 *   `@inference-shield/core` can both be loaded in one process; `isShieldError` checks the shape).
 * - The "body too large" error of the body parsers: the one framework error our own stack
 *   produces. `createHttpsApp` registers the JSON/urlencoded parsers (Express) or sets Fastify's
 *   `bodyLimit` with its `limits.maxBodyBytes`, and its request gate answers a body *announced*
 *   over that limit with `413 ERR_BODY_TOO_LARGE`; a chunked body crossing the same limit is
 *   caught by the parser instead, and must get the same answer. The status is 413 either way.
 *
 * Nothing else: an `HttpException` of the application, an error of its own, a 404 for an unknown
 * route and a malformed JSON body stay with the application's filters and Nest's default handler.
 */
class ShieldOwnError {
  static [Symbol.hasInstance](value: unknown): boolean {
    return isShieldError(value) || isBodyTooLarge(value);
  }
}

/**
 * Errors Nest's own handler would answer `500 Internal server error` (and log with their
 * message): neither an `HttpException` nor an error carrying an HTTP status (http-errors,
 * Fastify). Only {@link ShieldRedactingExceptionFilter} claims these.
 */
class UnknownError {
  static [Symbol.hasInstance](value: unknown): boolean {
    return !(value instanceof HttpException) && !hasHttpStatus(value);
  }
}

/** Express body-parser (`type: 'entity.too.large'`) and Fastify (`FST_ERR_CTP_BODY_TOO_LARGE`). */
function isBodyTooLarge(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as { type?: unknown; code?: unknown; status?: unknown; statusCode?: unknown };
  return (
    (e.type === 'entity.too.large' && (e.status === 413 || e.statusCode === 413)) ||
    (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && e.statusCode === 413)
  );
}

/** What Nest's `BaseExceptionFilter.isHttpError` answers with its own status. */
function hasHttpStatus(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as { statusCode?: unknown; message?: unknown };
  return typeof e.statusCode === 'number' && typeof e.message === 'string';
}

/**
 * Answers Inference Shield's own refusals: a `ShieldError` becomes the catalogue's status, headers
 * (`WWW-Authenticate` challenges) and body `{ code, message[, scope] }`, for Express and Fastify
 * alike (see {@link toHttpResponse}). Every other error is left to the application's filters and
 * to Nest's default handling, unchanged: `@Catch` only names Shield's errors, so Nest never
 * selects this filter for anything else.
 *
 * `IdentityModule` registers it (as `APP_FILTER`); register it yourself
 * (`app.useGlobalFilters(new ShieldExceptionFilter(app.get(HttpAdapterHost)))`) when you use other
 * Shield packages without `IdentityModule`.
 */
@Catch(ShieldOwnError)
export class ShieldExceptionFilter implements ExceptionFilter {
  protected readonly logger = new Logger('Shield');

  /**
   * @param challenge What every challenge carries (`IdentityModule` passes its RFC 9728
   * `resource_metadata` URL); nothing when the filter is registered as a class.
   */
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Optional() private readonly challenge?: ChallengeParams,
  ) {}

  catch(err: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw err;
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<unknown>();
    const adapter = this.adapterHost.httpAdapter;
    const response = toHttpResponse(err, this.challenge);
    if (codeOf(err) === 'ERR_INTERNAL') {
      this.logger.error(`unhandled ${describe(err)}`);
    }
    if (isHeadersSent(res)) return;
    for (const [name, value] of Object.entries(response.headers)) adapter.setHeader(res, name, value);
    adapter.reply(res, response.body, response.status);
  }
}

/**
 * Opt-in (`IdentityModule.forRoot({ redactUnknownErrors: true })`): also answers the errors Nest
 * would turn into a bare 500, i.e. neither an `HttpException` nor an error carrying an HTTP
 * status, with `500 { code: 'ERR_INTERNAL' }`, and logs them by name and first stack frame only
 * (Nest's default logs the whole error: a library message can quote its input, a token or a
 * prompt). The application's `HttpException`s and its route and controller filters are untouched;
 * its global filters no longer see those unknown errors (this filter claims them first).
 */
@Catch(ShieldOwnError, UnknownError)
export class ShieldRedactingExceptionFilter extends ShieldExceptionFilter {}

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
