import type { IncomingMessage, ServerResponse } from 'node:http';
import { Logger } from '@nestjs/common';
import { ShieldError, toHttpResponse } from '@inference-shield/core/internal';
import type { RequestListener } from '@inference-shield/core/internal';

/** Passes a request on to the next hook, or to the framework after the last one. */
export type HttpsRequestNext = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A hook on every request the request gate accepted, before the framework sees it. It either calls
 * `next(req, res)` exactly once (synchronously or later), or answers the request itself (writes
 * and ends `res`) and does not call `next`. A hook that throws synchronously is answered with a
 * coded `500 ERR_INTERNAL` and the connection is closed: the framework never runs for it.
 * A hook that continues asynchronously owns its own failures (it must call `next` or answer).
 */
export type HttpsRequestHook = (req: IncomingMessage, res: ServerResponse, next: HttpsRequestNext) => void;

/**
 * The one seam for other packages on the server `createHttpsApp` builds, found on the server with
 * {@link requestHooksOf}. Hooks run in the order they were added, after the request gate and before
 * the framework's request listener:
 *
 * 1. connection gate (per-address cap, handshake deadline, plaintext refused)
 * 2. TLS (handshake, client certificate)
 * 3. request gate (security headers, `Host` and framing checks, size limits, body counting,
 *    `100 Continue`)
 * 4. the hooks added here, in order
 * 5. the framework (Express's app function, Fastify's handler)
 */
export interface HttpsRequestHookRegistry {
  /**
   * Add a hook after those already added; `name` (for logs and {@link names}) must be unique.
   * Returns the function that removes it.
   */
  add(name: string, hook: HttpsRequestHook): () => void;
  /** The hooks in the order they run. */
  names(): readonly string[];
}

/**
 * Where the registry sits on the server: a registered symbol, so a second copy of this package in
 * the same process (two versions installed side by side) finds the same registry. The version suffix
 * changes when the hook contract does.
 */
const REGISTRY = Symbol.for('@inference-shield/https:request-hooks@1');

const logger = new Logger('ShieldHttps');

const HOOK_NAME = /^[a-z0-9][a-z0-9:._-]{0,63}$/;

/**
 * The request hooks of one server: runs the hooks in order, then the framework. Composed once per
 * change, so a request costs one call per hook and nothing is allocated per request; with no hook
 * the framework is called directly.
 */
export class HttpsRequestHooks implements HttpsRequestHookRegistry {
  private readonly entries: { readonly name: string; readonly hook: HttpsRequestHook }[] = [];
  private chain: HttpsRequestNext;
  private readonly internalError = toHttpResponse(new ShieldError('ERR_INTERNAL'));

  constructor(private readonly framework: RequestListener) {
    this.chain = framework;
  }

  /** Attach a registry to `server`, where {@link requestHooksOf} finds it. */
  static attach(server: object, framework: RequestListener): HttpsRequestHooks {
    if (requestHooksOf(server) !== undefined) {
      // Two gates on one server would count bodies twice and answer twice.
      throw new Error('this server already has Inference Shield request hooks');
    }
    const hooks = new HttpsRequestHooks(framework);
    Object.defineProperty(server, REGISTRY, { value: hooks, enumerable: false });
    return hooks;
  }

  add(name: string, hook: HttpsRequestHook): () => void {
    if (typeof name !== 'string' || !HOOK_NAME.test(name)) {
      throw new TypeError(
        `"name" must be 1 to 64 lowercase letters, digits and ":._-", got ${JSON.stringify(name)}`,
      );
    }
    if (typeof hook !== 'function') throw new TypeError(`request hook "${name}" must be a function`);
    if (this.entries.some((e) => e.name === name)) {
      throw new Error(`a request hook named "${name}" is already registered`);
    }
    const entry = { name, hook };
    this.entries.push(entry);
    this.compose();
    return () => {
      const i = this.entries.indexOf(entry);
      if (i < 0) return;
      this.entries.splice(i, 1);
      this.compose();
    };
  }

  names(): readonly string[] {
    return this.entries.map((e) => e.name);
  }

  /** Run the hooks, then the framework: what the request gate calls for each accepted request. */
  readonly run: HttpsRequestNext = (req, res) => this.chain(req, res);

  private compose(): void {
    let next: HttpsRequestNext = this.framework;
    for (let i = this.entries.length - 1; i >= 0; i -= 1) {
      const { name, hook } = this.entries[i] as (typeof this.entries)[number];
      const after = next;
      next = (req, res) => {
        try {
          hook(req, res, after);
        } catch (err) {
          this.fail(name, err, res);
        }
      };
    }
    this.chain = next;
  }

  /** Fail closed: a hook that throws never lets the request through. */
  private fail(name: string, err: unknown, res: ServerResponse): void {
    // The class only: a message may quote the request.
    logger.error(`request hook "${name}" threw ${err instanceof Error ? err.name : typeof err}`);
    if (res.headersSent || res.writableEnded) {
      res.socket?.destroy();
      return;
    }
    const body = JSON.stringify(this.internalError.body);
    res.statusCode = this.internalError.status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.setHeader('Connection', 'close');
    for (const [header, value] of Object.entries(this.internalError.headers)) res.setHeader(header, value);
    res.end(body);
  }
}

/**
 * The request-hook registry of a server built by `createHttpsApp`, or `undefined` for any other
 * server (a plain `NestFactory.create` app): a package that hooks requests uses the registry when
 * there is one, and its own way otherwise.
 *
 * @example
 * const hooks = requestHooksOf(adapterHost.httpAdapter.getHttpServer());
 * const remove = hooks?.add('identity:request-shape', (req, res, next) => { shape(req); next(req, res); });
 */
export function requestHooksOf(server: unknown): HttpsRequestHookRegistry | undefined {
  if (typeof server !== 'object' || server === null) return undefined;
  const registry = (server as Record<symbol, unknown>)[REGISTRY];
  if (typeof registry !== 'object' || registry === null) return undefined;
  const r = registry as Partial<HttpsRequestHookRegistry>;
  return typeof r.add === 'function' && typeof r.names === 'function'
    ? (registry as HttpsRequestHookRegistry)
    : undefined;
}
