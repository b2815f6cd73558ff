import type { ShieldPrincipal } from './principal.interface.js';

// Not a property of the request: only this module can write it, so no body parser, middleware or
// client-controlled JSON can ever set it. And cheaper than a property: once Express has changed
// the request's prototype, V8 builds a new hidden class (copying every property descriptor) for
// each property added to it, a few microseconds per request; a WeakMap entry is a hash insert.
// Entries go with their request.
const principals = new WeakMap<object, ShieldPrincipal>();

/**
 * Attaches the verified principal to the request (read back by {@link principalOf} and
 * `@Principal()`), and sets it as `req.user` for code written for passport.
 */
export function attachPrincipal(request: object, principal: ShieldPrincipal): void {
  principals.set(request, principal);
  (request as { user?: unknown }).user = principal;
}

/** Reads the principal the guard attached (`undefined` on `@Public()` routes). */
export function principalOf(request: object): ShieldPrincipal | undefined {
  return principals.get(request);
}
