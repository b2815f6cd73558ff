/**
 * Finding: with `allowIdpInitiated: false`, an unsolicited assertion (its signed bearer
 * `SubjectConfirmationData` answers no request) was accepted once the attacker wrote
 * `InResponseTo="<id>"` on the *unsigned* Response, `<id>` being the ID of an AuthnRequest he
 * started himself with `GET /saml/login`. The validator took the request ID from the assertion,
 * or else from the unverified Response (`assertion.bearer.inResponseTo ?? facts.inResponseTo`).
 *
 * SAML profiles §4.1.4.2: a bearer assertion answering an AuthnRequest carries its ID in the
 * (signed) `SubjectConfirmationData`. A Response-level `InResponseTo` is the IdP's word only when
 * the Response signature covers it.
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

let ctx: AttackContext;
let app: TestApp;

beforeAll(async () => {
  ctx = await createAttackContext();
  app = await startSamlApp(ctx, samlOptions(ctx, { allowIdpInitiated: false }));
});

afterAll(async () => {
  await app?.close();
});

/** An IdP-initiated response: assertion signed, nothing answers a request, Response unsigned. */
function unsolicited(): string {
  return ctx.idp.response();
}

/** Adds `InResponseTo` to the root element of an unsigned response (no signature to break). */
function withResponseInResponseTo(xml: string, id: string): string {
  return xml.replace('<samlp:Response ', `<samlp:Response InResponseTo="${id}" `);
}

describe('InResponseTo comes from signed content only', () => {
  it('control: an unsolicited response is refused when IdP-initiated login is off', async () => {
    expect(outcome(await postAcs(app, base64(unsolicited())))).toEqual({
      status: 401,
      code: 'ERR_SAML_IN_RESPONSE_TO_INVALID',
    });
  });

  it('refuses an unsolicited assertion passed off as an answer through the unsigned Response', async () => {
    const requestId = await startLogin(app);
    const forged = withResponseInResponseTo(unsolicited(), requestId);
    expect(outcome(await postAcs(app, base64(forged)))).toEqual({
      status: 401,
      code: 'ERR_SAML_IN_RESPONSE_TO_INVALID',
    });
  });

  it('still accepts the real answer: InResponseTo in the signed SubjectConfirmationData', async () => {
    const requestId = await startLogin(app);
    const answer = ctx.idp.response({ inResponseTo: requestId });
    expect(outcome(await postAcs(app, base64(answer)))).toEqual({ status: 200, code: 'accepted' });
  });

  it('still accepts InResponseTo on the Response only when the Response is signed', async () => {
    const requestId = await startLogin(app);
    const answer = ctx.idp.response({
      inResponseTo: requestId,
      assertion: { inResponseTo: undefined },
      signResponse: true,
    });
    expect(answer).not.toMatch(/SubjectConfirmationData[^>]*InResponseTo/);
    expect(outcome(await postAcs(app, base64(answer)))).toEqual({ status: 200, code: 'accepted' });
  });
});
