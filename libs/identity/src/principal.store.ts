import type { ShieldPrincipal } from './principal.interface.js';

// Where the verified principal lives: a property keyed by a symbol this module creates, so nothing
// a client sends can set it (JSON, query strings and headers only make string keys; the symbol is
// not registered, so `Symbol.for` cannot reach it). Code running in the process can still find it
// with `Object.getOwnPropertySymbols`: it protects against input, not against the application
// itself. `IdentityModule` gives every request this slot as it arrives (see request-shape.ts),
// before Express swaps the request's prototype: filling a slot that exists is a plain store, where
// adding a property to a request whose prototype was swapped builds a one-off hidden class (a few
// microseconds). On a request without the slot (Fastify's request objects, which all share one
// constructor and so one hidden-class transition), the store adds the property.
//
// A plain (enumerable) property, on purpose: `Object.defineProperty` on every request cost about
// 1.6 µs in the guard benchmark's profile, against a store. What enumerability exposes is what
// `req.user` (the same principal, for passport code) exposes anyway: a copy of the request
// (`{ ...req }`) carries the same request's principal, and `JSON.stringify` skips symbol keys.
const PRINCIPAL: unique symbol = Symbol('@inference-shield/identity:principal');

interface Slotted {
  [PRINCIPAL]?: ShieldPrincipal | undefined;
  user?: unknown;
}

/** Gives a fresh request the principal slot (empty). Called as the request arrives. */
export function addPrincipalSlot(request: object): void {
  (request as Slotted)[PRINCIPAL] = undefined;
}

/**
 * Attaches the verified principal to the request (read back by {@link principalOf} and
 * `@Principal()`), and, with `asUser` (no `user.resolve` hook configured), sets it as `req.user`
 * for code written for passport.
 */
export function attachPrincipal(request: object, principal: ShieldPrincipal, asUser = true): void {
  const r = request as Slotted;
  r[PRINCIPAL] = principal;
  if (asUser) r.user = principal;
}

/** Reads the principal the guard attached (`undefined` on `@Public()` routes). */
export function principalOf(request: object): ShieldPrincipal | undefined {
  // Outside HTTP, `getRequest()` can be anything, `undefined` included.
  if (typeof request !== 'object' || request === null) return undefined;
  return (request as Slotted)[PRINCIPAL];
}
