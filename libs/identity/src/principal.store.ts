import type { ShieldPrincipal } from './principal.interface.js';

// Where the verified principal lives: a non-enumerable property keyed by a symbol this module
// creates, so nothing a client sends can set it (JSON, query strings and headers only make string
// keys; the symbol is not registered, so `Symbol.for` cannot reach it). Code running in the process
// can still find it with `Object.getOwnPropertySymbols`: it protects against input, not against
// the application itself. `IdentityModule` gives every
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

// Not enumerable: `{ ...req }` and `Object.assign` clones of a request do not carry the principal.
function defineSlot(r: Slotted, value: ShieldPrincipal | undefined): void {
  Object.defineProperty(r, PRINCIPAL, { value, writable: true, enumerable: false, configurable: true });
}

/** Gives a fresh request the principal slot (empty). Called as the request arrives. */
export function addPrincipalSlot(request: object): void {
  const r = request as Slotted;
  if (!(PRINCIPAL in r)) defineSlot(r, undefined);
}

/**
 * Attaches the verified principal to the request (read back by {@link principalOf} and
 * `@Principal()`), and sets it as `req.user` for code written for passport.
 */
export function attachPrincipal(request: object, principal: ShieldPrincipal): void {
  const r = request as Slotted;
  if (PRINCIPAL in r) r[PRINCIPAL] = principal;
  else defineSlot(r, principal);
  r.user = principal;
}

/** Reads the principal the guard attached (`undefined` on `@Public()` routes). */
export function principalOf(request: object): ShieldPrincipal | undefined {
  // Outside HTTP, `getRequest()` can be anything, `undefined` included.
  if (typeof request !== 'object' || request === null) return undefined;
  return (request as Slotted)[PRINCIPAL];
}
