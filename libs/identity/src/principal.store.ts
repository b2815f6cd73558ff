import type { ShieldPrincipal } from './principal.interface.js';

// Where the verified principal lives: a property keyed by a symbol only this module holds, so no
// body parser, middleware or client-controlled JSON can ever set it (JSON has no symbol keys, and
// the symbol is not registered: `Symbol.for` cannot reach it). `IdentityModule` gives every
// request this slot as it arrives (see request-shape.ts), before Express swaps the request's
// prototype: filling a slot that exists is a plain store, where adding a property to a request
// whose prototype was swapped builds a one-off hidden class (a few microseconds), and a WeakMap
// insert per request costs the garbage collector (ephemeron tables) about as much. On a request
// without the slot (Fastify's request objects, which all share one constructor and so one
// hidden-class transition), the store adds the property.
const PRINCIPAL: unique symbol = Symbol('shield.principal');

interface Slotted {
  [PRINCIPAL]?: ShieldPrincipal | undefined;
  user?: unknown;
}

/** Gives a fresh request the principal slot (empty). Called as the request arrives. */
export function addPrincipalSlot(request: object): void {
  const r = request as Slotted;
  if (!(PRINCIPAL in r)) r[PRINCIPAL] = undefined;
}

/**
 * Attaches the verified principal to the request (read back by {@link principalOf} and
 * `@Principal()`), and sets it as `req.user` for code written for passport.
 */
export function attachPrincipal(request: object, principal: ShieldPrincipal): void {
  const r = request as Slotted;
  r[PRINCIPAL] = principal;
  r.user = principal;
}

/** Reads the principal the guard attached (`undefined` on `@Public()` routes). */
export function principalOf(request: object): ShieldPrincipal | undefined {
  return (request as Slotted)[PRINCIPAL];
}
