/**
 * `GET /saml/login` is unauthenticated. It used to store each pending AuthnRequest in a bounded
 * in-memory store that dropped the oldest when full: anybody sending `memoryStoreMaxEntries`
 * logins within `loginRequestTtlSeconds` made every SP-initiated login in progress fail. Now the
 * in-memory store mints request IDs that carry their own MAC and expiry, and keeps nothing until a
 * signed response answers one: the flood below pushes out nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../../support/harness.js';
import { base64 } from '../../saml/support/test-idp.js';
import {
  createAttackContext,
  outcome,
  postAcs,
  samlOptions,
  startLogin,
  startSamlApp,
  type AttackContext,
} from './saml-attack-fixture.js';

/** A small store, so the flood is a few requests instead of 100 000. */
const CAPACITY = 8;

let ctx: AttackContext;
let app: TestApp;

beforeAll(async () => {
  ctx = await createAttackContext();
  app = await startSamlApp(ctx, samlOptions(ctx, {}, { memoryStoreMaxEntries: CAPACITY }));
});

afterAll(async () => {
  await app?.close();
});

describe('a flood of anonymous logins and the pending requests of real users', () => {
  it('control: a user who starts a login and comes back with the answer gets in', async () => {
    const requestId = await startLogin(app);
    const answer = base64(ctx.idp.response({ inResponseTo: requestId }));
    expect(outcome(await postAcs(app, answer))).toEqual({ status: 200, code: 'accepted' });
  });

  it('the user still gets in after many times CAPACITY anonymous logins', async () => {
    const requestId = await startLogin(app);
    for (let i = 0; i < 4 * CAPACITY; i++) await startLogin(app); // the attacker, bounded
    const answer = base64(ctx.idp.response({ inResponseTo: requestId }));
    expect(outcome(await postAcs(app, answer))).toEqual({ status: 200, code: 'accepted' });
  });

  it('an answered request is not accepted a second time, even with a fresh assertion', async () => {
    const requestId = await startLogin(app);
    const first = base64(ctx.idp.response({ inResponseTo: requestId }));
    expect(outcome(await postAcs(app, first))).toEqual({ status: 200, code: 'accepted' });
    const second = base64(ctx.idp.response({ inResponseTo: requestId }));
    expect(outcome(await postAcs(app, second))).toMatchObject({ status: 401 });
  });
});
