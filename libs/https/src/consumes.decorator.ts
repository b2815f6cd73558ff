import type { IncomingMessage } from 'node:http';
import { parse as parseForm } from 'node:querystring';
import {
  applyDecorators,
  SetMetadata,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { ShieldError } from '@inference-shield/core/internal';
import { from, switchMap, type Observable } from 'rxjs';

/** The body types a route can declare and parse itself. */
export type ConsumableMediaType = 'application/json' | 'application/x-www-form-urlencoded';

/** Options of {@link Consumes}. */
export interface ConsumesOptions {
  /**
   * Largest body the route reads itself, when no parser of the application has read it (default
   * 1 MiB, as `limits.maxBodyBytes`): past it, `413 ERR_BODY_TOO_LARGE`.
   */
  readonly maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/**
 * Nest's `@RouteConfig` metadata key (`@nestjs/platform-fastify`): Fastify gets it as the route's
 * `config`, where the bootstrap's `onRequest` hook finds the declared types.
 */
const FASTIFY_ROUTE_CONFIG = '__fastify_route_config__';
/** The key, in a Fastify route's `config`, of the types declared with {@link Consumes}. */
export const CONSUMES_ROUTE_CONFIG_KEY = 'shieldConsumes';
const MEDIA_TYPES: readonly string[] = ['application/json', 'application/x-www-form-urlencoded'];

/** The media type of a `Content-Type` value, lowercased, without parameters; '' when absent. */
function mediaTypeOf(value: string | undefined): string {
  if (value === undefined) return '';
  const semi = value.indexOf(';');
  return (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
}

/** The `charset` parameter, lowercased, or undefined. */
function charsetOf(value: string): string | undefined {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(value);
  return match?.[1]?.toLowerCase();
}

/** True when a request with this `Content-Type` header is not one of `types` (none counts as not). */
export function unsupportedMediaType(types: ReadonlySet<string>, contentType: string | undefined): boolean {
  return !types.has(mediaTypeOf(contentType));
}

/** Read a body nobody has read yet, up to `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) {
      // Stop reading; the HTTPS bootstrap also closes the connection past its own limit.
      req.pause();
      throw new ShieldError('ERR_BODY_TOO_LARGE');
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Checks the `Content-Type` of a request against the types its route declared (see
 * {@link Consumes}), and parses the body when no parser of the application did (Express with
 * `bodyParser: false`, or a type the host parses only for its own routes). Built once per route, at
 * start-up.
 */
export class ConsumesInterceptor implements NestInterceptor {
  private readonly types: ReadonlySet<string>;
  private readonly maxBodyBytes: number;

  constructor(types: readonly ConsumableMediaType[], options: ConsumesOptions = {}) {
    if (types.length === 0) throw new TypeError('@Consumes() needs at least one media type');
    for (const type of types) {
      if (!MEDIA_TYPES.includes(type)) {
        throw new TypeError(`@Consumes(): "${String(type)}" is not one of ${MEDIA_TYPES.join(', ')}`);
      }
    }
    const max = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new TypeError(`@Consumes(): "maxBodyBytes" must be a positive integer, got ${String(max)}`);
    }
    this.types = new Set(types);
    this.maxBodyBytes = max;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    // Express hands over the Node request; Fastify its own request, with the Node one as `raw`.
    const req = context.switchToHttp().getRequest<{ body?: unknown; raw?: IncomingMessage }>();
    const raw = req.raw ?? (req as unknown as IncomingMessage);
    const contentType = raw.headers['content-type'];
    const type = mediaTypeOf(contentType);
    // RFC 9110 §15.5.16: content in a format the route does not take (including none at all).
    if (unsupportedMediaType(this.types, contentType)) throw new ShieldError('ERR_UNSUPPORTED_MEDIA_TYPE');
    if (raw.readableFlowing !== null || raw.readableEnded || req.body !== undefined) {
      // An application parser (Nest's defaults, the host's own) read it already.
      return next.handle();
    }
    const charset = charsetOf(contentType ?? '');
    const encoding = raw.headers['content-encoding'];
    if (
      (charset !== undefined && charset !== 'utf-8') ||
      (encoding !== undefined && encoding !== 'identity')
    ) {
      throw new ShieldError('ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    return from(this.parse(raw, type)).pipe(
      switchMap((body) => {
        req.body = body;
        return next.handle();
      }),
    );
  }

  private async parse(raw: IncomingMessage, type: string): Promise<unknown> {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
    let decoded: string;
    try {
      decoded = text.decode(await readBody(raw, this.maxBodyBytes));
    } catch (err) {
      if (err instanceof ShieldError) throw err;
      throw new ShieldError('ERR_BAD_REQUEST', { cause: err });
    }
    if (type === 'application/x-www-form-urlencoded') {
      // Null-prototype object; a repeated field becomes an array (the route refuses it).
      return parseForm(decoded, '&', '=', { maxKeys: 1000 });
    }
    try {
      return decoded.length === 0 ? {} : (JSON.parse(decoded) as unknown);
    } catch (err) {
      throw new ShieldError('ERR_BAD_REQUEST', { cause: err });
    }
  }
}

/**
 * Declares the body types a route takes. A request with any other `Content-Type` (none included)
 * gets `415 ERR_UNSUPPORTED_MEDIA_TYPE` before the handler runs (after the guards: an
 * unauthenticated caller learns nothing about the route). The application's own parsers are left
 * as the host configured them; where none has read the body, the route parses it itself (JSON, or
 * a URL-encoded form, UTF-8, no content coding).
 *
 * @example
 * \@Consumes('application/json')
 * \@Post('models/:name/infer')
 * infer(@Body() body: unknown) {}
 */
export function Consumes(
  ...args: [...ConsumableMediaType[]] | [...ConsumableMediaType[], ConsumesOptions]
): MethodDecorator & ClassDecorator {
  const last = args.at(-1);
  const options = typeof last === 'object' ? last : {};
  const types: ConsumableMediaType[] = [];
  for (const a of args) if (typeof a === 'string') types.push(a);
  return applyDecorators(
    // Fastify parses bodies before any interceptor, and answers a type it has no parser for
    // itself; with this, the HTTPS bootstrap refuses such a request before parsing, coded.
    SetMetadata(FASTIFY_ROUTE_CONFIG, { [CONSUMES_ROUTE_CONFIG_KEY]: Object.freeze([...types]) }),
    UseInterceptors(new ConsumesInterceptor(types, options)),
  );
}
