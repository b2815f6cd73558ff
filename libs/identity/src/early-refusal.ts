import type { IncomingMessage, ServerResponse } from 'node:http';
import { Logger } from '@nestjs/common';
import { MODULE_PATH, VERSION_METADATA } from '@nestjs/common/constants.js';
import type { ApplicationConfig } from '@nestjs/core';
import { toHttpResponse, type ChallengeParams, type ShieldError } from '@inference-shield/core/internal';
import type { HttpsRequestHook } from '@inference-shield/https/internal';
import type { IdentityGuard } from './identity.guard.js';
import type { RouteEntry } from './policy.registry.js';
import { SHIELD_REFUSAL_BODY_METADATA, type RefusalBodyRenderer } from './refusal-body.decorator.js';

/**
 * Refusing on the headers alone (issue #13, 1b). Express parses a JSON body (up to the body
 * limit) before any guard runs, and Fastify before its handler: an anonymous client could make
 * the server read and parse half a megabyte per request on a route it may not call. Here, before
 * the body parser, a request that announces a body, on a route whose policy needs a credential,
 * is checked by the guard's own decision on its headers and TLS connection: a missing or invalid
 * credential (a 401) is answered at once, with `Connection: close`, and the body is never read.
 *
 * The guard stays the authority: this refuses only what it would refuse (its own decision code,
 * 401s only, and only when every route the request could match refuses), and lets everything
 * else through to the guard, which decides again, or takes this check's allow when it is fresh
 * and about the same header and route policy (see `IdentityGuard.preflight`). Routes it cannot
 * place for sure (versioned routes, RouterModule paths, global-prefix exclusions, wildcard
 * templates) are left to the guard alone.
 * Routes whose credential is in the body are `@Public()` (the SAML ACS, the token endpoint), so
 * they are never refused here.
 */

type Handle = (this: unknown, req: IncomingMessage, res: ServerResponse, next?: unknown) => void;

interface Candidate {
  readonly method: string;
  readonly pattern: RegExp;
  /** The full template as the adapter registered it (Fastify's `routeOptions.url`). */
  readonly template: string;
  readonly entry: RouteEntry;
  /** The route's {@link RefusalBody}, read once here. */
  readonly render: RefusalBodyRenderer | undefined;
}

const logger = new Logger('ShieldIdentity');

// A template made of literal segments and `:param` segments only (path-to-regexp's other syntax,
// wildcards and optional groups, is left to the guard).
const SIMPLE_SEGMENT = /^(?:[A-Za-z0-9._~!$&'()+,;=@%-]+|:[A-Za-z_][A-Za-z0-9_]*)$/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function joinPath(...parts: string[]): string {
  return `/${parts.join('/')}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
}

/** The request paths Nest registers for the routes we can place exactly, with their policies. */
export function earlyCandidates(routes: readonly RouteEntry[], config: ApplicationConfig): Candidate[] {
  if (config.getVersioning()) return [];
  const prefixOptions = config.getGlobalPrefixOptions() as { exclude?: unknown[] } | undefined;
  if ((prefixOptions?.exclude?.length ?? 0) > 0) return [];
  const prefix = config.getGlobalPrefix();
  const out: Candidate[] = [];
  for (const entry of routes) {
    // Public routes stay candidates: a request that could match one (`@Public() POST /items/import`
    // beside a guarded `POST /items/:id`) must not be refused early; preflight lets them through.
    if (
      Reflect.getMetadata(VERSION_METADATA, entry.controller) !== undefined ||
      Reflect.getMetadata(VERSION_METADATA, entry.handler) !== undefined
    )
      continue;
    if (entry.module && Reflect.getMetadataKeys(entry.module).some((k) => String(k).startsWith(MODULE_PATH)))
      continue;
    for (const path of entry.paths) {
      const template = joinPath(prefix, path);
      const segments = template.split('/').slice(1);
      if (template !== '/' && !segments.every((s) => SIMPLE_SEGMENT.test(s))) continue;
      const body = segments.map((s) => (s.startsWith(':') ? '/[^/]+' : `/${escapeRegExp(s)}`)).join('');
      // Express 5 defaults: case-insensitive, a trailing slash allowed.
      out.push({
        method: entry.method,
        pattern: new RegExp(`^${body}/?$`, 'i'),
        template,
        entry,
        render: refusalRenderer(entry),
      });
    }
  }
  return out;
}

function refusalRenderer(entry: RouteEntry): RefusalBodyRenderer | undefined {
  const render: unknown =
    Reflect.getMetadata(SHIELD_REFUSAL_BODY_METADATA, entry.handler) ??
    Reflect.getMetadata(SHIELD_REFUSAL_BODY_METADATA, entry.controller);
  return typeof render === 'function' ? (render as RefusalBodyRenderer) : undefined;
}

function methodMatches(routeMethod: string, requestMethod: string | undefined): boolean {
  return (
    routeMethod === 'ALL' ||
    routeMethod === requestMethod ||
    (requestMethod === 'HEAD' && routeMethod === 'GET')
  );
}

/** A body is coming: a non-zero `Content-Length`, or any `Transfer-Encoding`. */
function announcesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * The refusal for a request matching `candidates`: the first route's 401 when every route the
 * request could match refuses it with a 401; `undefined` (let the guard decide) otherwise.
 * Synchronous while the guard's decisions are (a known token, or a key already in use); a
 * promise from the first decision that has to wait.
 */
function refusalFor(
  guard: IdentityGuard,
  candidates: readonly Candidate[],
  req: IncomingMessage,
  from = 0,
  found?: Refusal,
): Refusal | undefined | Promise<Refusal | undefined> {
  let first = found;
  for (let i = from; i < candidates.length; i++) {
    const c = candidates[i];
    if (c === undefined) break;
    const error = guard.preflight(c.entry.policy, req);
    if (error instanceof Promise) {
      return error.then((e) =>
        e === undefined ? undefined : refusalFor(guard, candidates, req, i + 1, first ?? refusalOn(c, e)),
      );
    }
    if (!error) return undefined;
    first ??= refusalOn(c, error);
  }
  return first;
}

function refusalOn(c: Candidate, error: ShieldError): Refusal {
  return { error, route: c.entry.policy.route, render: c.render };
}

/** The same status, challenge and body the exception filter gives, then the connection closes. */
function answer(
  res: ServerResponse,
  error: ShieldError,
  challenge: ChallengeParams,
  render: RefusalBodyRenderer | undefined,
): void {
  const response = toHttpResponse(error, challenge);
  const body = JSON.stringify(
    render === undefined
      ? response.body
      : render({
          status: response.status,
          code: response.body.code,
          message: response.body.detail ?? response.body.message,
        }),
  );
  res.statusCode = response.status;
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  // The body was never read: closing is cheaper than draining it to find the next request.
  res.setHeader('Connection', 'close');
  res.end(body);
}

type Refusal = {
  readonly error: ShieldError;
  readonly route: string;
  readonly render: RefusalBodyRenderer | undefined;
};

/**
 * The Express-side check, built once: for a request, `undefined` when there is nothing to refuse
 * (no body announced, no candidate route, or every decision lets it pass), the refusal, or a
 * promise of either when a decision has to wait.
 */
function expressCheck(
  candidates: readonly Candidate[],
  guard: IdentityGuard,
): (req: IncomingMessage) => Refusal | undefined | Promise<Refusal | undefined> {
  const byMethod = new Map<string, Candidate[]>();
  const lookup = (method: string | undefined): Candidate[] => {
    const key = method ?? '';
    let list = byMethod.get(key);
    if (!list) byMethod.set(key, (list = candidates.filter((c) => methodMatches(c.method, method))));
    return list;
  };
  return (req) => {
    if (!announcesBody(req)) return undefined;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const matched = lookup(req.method).filter((c) => c.pattern.test(path));
    return matched.length === 0 ? undefined : refusalFor(guard, matched, req);
  };
}

/**
 * Runs the check and then `pass` (let the request through) or the refusal: at once when the check
 * is synchronous, after it otherwise. A check that fails lets the guard decide as usual.
 */
function runCheck(
  check: (req: IncomingMessage) => Refusal | undefined | Promise<Refusal | undefined>,
  guard: IdentityGuard,
  req: IncomingMessage,
  res: ServerResponse,
  pass: () => void,
): void {
  let pending: Refusal | undefined | Promise<Refusal | undefined>;
  try {
    pending = check(req);
  } catch (err) {
    checkFailed(err);
    return pass();
  }
  if (pending === undefined) return pass();
  if (!(pending instanceof Promise)) return refuse(guard, res, pending);
  pending.then(
    (refusal) => (refusal ? refuse(guard, res, refusal) : pass()),
    (err: unknown) => {
      checkFailed(err);
      pass();
    },
  );
}

function refuse(guard: IdentityGuard, res: ServerResponse, refusal: Refusal): void {
  guard.recordRefusal(refusal.route, refusal.error);
  answer(res, refusal.error, guard.challenge, refusal.render);
}

function checkFailed(err: unknown): void {
  // preflight does not throw; if it ever does, the guard decides as usual.
  logger.error(`early credential check failed: ${err instanceof Error ? err.name : typeof err}`);
}

/**
 * Express under `createHttpsApp`: the check as a request hook on the bootstrap's one seam
 * (`@inference-shield/https/internal`), which runs after the request gate (whose security headers
 * are then already on the response) and before the framework, body parser included.
 */
export function expressEarlyRefusalHook(
  candidates: readonly Candidate[],
  guard: IdentityGuard,
): HttpsRequestHook | undefined {
  if (candidates.length === 0) return undefined;
  const check = expressCheck(candidates, guard);
  return (req, res, next) => runCheck(check, guard, req, res, () => next(req, res));
}

/**
 * Express in a plain Nest app (no `createHttpsApp`, so no seam): the check runs in the
 * application's `handle`, which the server's request listener calls first thing, before any
 * middleware, body parser included.
 */
export function installExpressEarlyRefusal(
  instance: unknown,
  candidates: readonly Candidate[],
  guard: IdentityGuard,
): (() => void) | undefined {
  const app = instance as { handle?: Handle };
  const original = app.handle;
  if (candidates.length === 0 || typeof original !== 'function') return undefined;
  const check = expressCheck(candidates, guard);
  const handle: Handle = function (this: unknown, req, res, next) {
    runCheck(check, guard, req, res, () => original.call(this, req, res, next));
  };
  app.handle = handle;
  return () => {
    if (app.handle === handle) app.handle = original;
  };
}

interface FastifyLike {
  addHook(
    name: 'onRequest',
    hook: (
      request: { raw: IncomingMessage; routeOptions?: { url?: string } },
      reply: { raw: ServerResponse; hijack(): void },
    ) => Promise<void>,
  ): unknown;
}

/**
 * Fastify: an `onRequest` hook, which runs after routing and before the content-type parser reads
 * the body. The route is Fastify's own match (`routeOptions.url`), compared with the templates.
 */
export function installFastifyEarlyRefusal(
  instance: unknown,
  candidates: readonly Candidate[],
  guard: IdentityGuard,
): void {
  if (candidates.length === 0) return;
  const byTemplate = new Map<string, Candidate[]>();
  for (const c of candidates) {
    const list = byTemplate.get(c.template) ?? [];
    list.push(c);
    byTemplate.set(c.template, list);
  }
  (instance as FastifyLike).addHook('onRequest', async (request, reply) => {
    const req = request.raw;
    if (!announcesBody(req)) return;
    const url = request.routeOptions?.url;
    if (url === undefined) return;
    const matched = (byTemplate.get(joinPath(url)) ?? []).filter((c) => methodMatches(c.method, req.method));
    if (matched.length === 0) return;
    let refusal: Refusal | undefined;
    try {
      refusal = await refusalFor(guard, matched, req);
    } catch (err) {
      checkFailed(err);
      return;
    }
    if (!refusal) return;
    // Written on the raw response, byte for byte what the Express path sends.
    reply.hijack();
    refuse(guard, reply.raw, refusal);
  });
}
