import type { EventEmitter } from 'node:events';
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
 * Returns the function that removes the listener.
 */
export function preshapeRequests(server: EventEmitter): () => void {
  const shape = (request: { user?: unknown }): void => {
    if (!('user' in request)) request.user = undefined;
    addPrincipalSlot(request);
  };
  server.prependListener('request', shape);
  return () => {
    server.off('request', shape);
  };
}
