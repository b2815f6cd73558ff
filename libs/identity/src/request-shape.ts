import type { EventEmitter } from 'node:events';
import type { HttpsRequestHook } from '@inference-shield/https/internal';
import { addPrincipalSlot } from './principal.store.js';

/**
 * Gives every request an own `user` property (value `undefined`) and the principal slot of
 * principal.store.ts as it arrives, before Express
 * swaps the request's prototype (`Object.setPrototypeOf(req, app.request)`). Why: V8 shares one
 * hidden class between objects built the same way, but not after a prototype swap; from then on
 * each property added to a request builds a one-off hidden class, copying every property
 * descriptor (about 30 on an Express request), a few microseconds per request. Added here, `user`
 * follows the cached shape of a fresh `IncomingMessage`, and the guard's `req.user = principal`
 * overwrites it instead of adding it. (Fastify's own advice, `decorateRequest`, for the same
 * reason.) `undefined` is what an unauthenticated request reads anyway; nothing is decided here.
 *
 * With a `user.resolve` hook storing its result elsewhere (`user.property`), that property is added
 * instead of `user`.
 *
 * Returns the function that removes the listener. Under `createHttpsApp` the module uses
 * {@link requestShapeHook} on the bootstrap's seam instead.
 */
export function preshapeRequests(server: EventEmitter, userProperty?: string): () => void {
  const shape = requestShaper(userProperty);
  server.prependListener('request', shape);
  return () => {
    server.off('request', shape);
  };
}

/**
 * The same shaping as a request hook on `createHttpsApp`'s seam (`@inference-shield/https/internal`):
 * it runs after the request gate and before the framework, so still before Express swaps the
 * request's prototype.
 */
export function requestShapeHook(userProperty?: string): HttpsRequestHook {
  const shape = requestShaper(userProperty);
  return (req, res, next) => {
    shape(req);
    next(req, res);
  };
}

function requestShaper(userProperty: string | undefined): (request: object) => void {
  return userProperty === undefined || userProperty === 'user'
    ? (request: { user?: unknown }): void => {
        if (!('user' in request)) request.user = undefined;
        addPrincipalSlot(request);
      }
    : (request: object): void => {
        // The `user.resolve` result lands on its own property; `user` is left alone.
        if (!(userProperty in request)) (request as Record<string, unknown>)[userProperty] = undefined;
        addPrincipalSlot(request);
      };
}
