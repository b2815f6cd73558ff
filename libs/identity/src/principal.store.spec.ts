import { describe, expect, it } from 'vitest';
import { addPrincipalSlot, attachPrincipal, principalOf } from './principal.store.js';
import { ALICE } from '../test/identity.fixtures.js';

const alice = ALICE;

describe('the principal store', () => {
  it('fills the slot of a request that has one, and sets req.user', () => {
    const req: { user?: unknown } = {};
    addPrincipalSlot(req);
    expect(principalOf(req)).toBeUndefined();
    const keysBefore = Reflect.ownKeys(req).length;
    attachPrincipal(req, alice);
    expect(principalOf(req)).toBe(alice);
    expect(req.user).toBe(alice);
    // The slot existed: attaching adds no property but `user`.
    expect(Reflect.ownKeys(req).length).toBe(keysBefore + 1);
  });

  it('adds the slot to a request that arrived without one (Fastify request objects)', () => {
    const req: { user?: unknown } = {};
    attachPrincipal(req, alice);
    expect(principalOf(req)).toBe(alice);
    expect(req.user).toBe(alice);
  });

  it('cannot be reached through anything a client controls', () => {
    // What a JSON body or a header could carry: string keys only, never the module's symbol.
    const forged = JSON.parse(
      '{"shield.principal":{"subject":"root"},"Symbol(shield.principal)":{"subject":"root"},"__proto__":{"subject":"root"}}',
    ) as object;
    addPrincipalSlot(forged);
    expect(principalOf(forged)).toBeUndefined();
    expect(principalOf({ user: alice })).toBeUndefined();
    expect(principalOf(Object.assign({}, { [Symbol.for('shield.principal')]: alice }))).toBeUndefined();
  });

  it('belongs to the request it was attached to, not to another request', () => {
    const a = {};
    addPrincipalSlot(a);
    attachPrincipal(a, alice);
    const b = {};
    addPrincipalSlot(b);
    expect(principalOf(b)).toBeUndefined();
    // A copy of a request is the same request: it carries that request's principal, as it
    // carries `user`. The slot is no string key (JSON and `Object.keys` skip it).
    expect(principalOf({ ...a })).toBe(alice);
    expect(Object.keys(a)).toEqual(['user']);
  });

  it('answers undefined for what a non-HTTP context hands over', () => {
    expect(principalOf(undefined as never)).toBeUndefined();
    expect(principalOf(null as never)).toBeUndefined();
    expect(principalOf('x' as never)).toBeUndefined();
  });
});
