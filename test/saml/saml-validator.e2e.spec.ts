import { beforeAll, describe, expect, it } from 'vitest';
import { isShieldError, type ShieldErrorCode } from '@inference-shield/core';
import {
  resolveSamlOptions,
  SamlValidator,
  type SamlModuleOptions,
  type SamlPrincipal,
} from '@inference-shield/saml/internal';
import {
  ACS_CASES,
  GRANT_CASES,
  IDP_ENTITY_ID,
  OTHER_IDP_ENTITY_ID,
  SP_ENTITY_ID,
  TOKEN_AUDIENCE,
  TOKEN_ISSUER,
  type CaseContext,
} from './support/saml-cases.js';
import {
  base64,
  base64url,
  createSigningIdentity,
  newId,
  TestIdp,
  type TestIdpTarget,
} from './support/test-idp.js';

const TARGET: TestIdpTarget = {
  acsUrl: 'https://sp.shield.local/saml/acs',
  audience: SP_ENTITY_ID,
  tokenEndpointUrl: 'https://sp.shield.local/oauth/token',
  grantAudience: 'https://sp.shield.local/oauth',
};
const MAX_BYTES = 65_536;

let ctx: CaseContext;

function options(
  overrides: Partial<SamlModuleOptions> = {},
  idpOverrides: Record<string, unknown> = {},
): SamlModuleOptions {
  return {
    serviceProvider: { entityId: SP_ENTITY_ID, acsUrl: TARGET.acsUrl },
    identityProviders: [
      {
        name: 'corp',
        entityId: IDP_ENTITY_ID,
        ssoUrl: 'https://idp.example/sso',
        signingCertificates: [ctx.idp.keys.certPem],
        allowIdpInitiated: true,
        allowBearerGrant: true,
        claims: {
          defaultScopes: ['openid'],
          rules: [{ attribute: 'groups', equals: 'model-users', scopes: ['models:infer'], roles: ['user'] }],
        },
        ...idpOverrides,
      },
      {
        name: 'other',
        entityId: OTHER_IDP_ENTITY_ID,
        ssoUrl: 'https://other-idp.example/sso',
        signingCertificates: [ctx.otherIdp.keys.certPem],
      },
    ],
    tokens: { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, signingKey: 'ephemeral' },
    grant: { tokenEndpointUrl: TARGET.tokenEndpointUrl, audience: TARGET.grantAudience },
    maxMessageBytes: MAX_BYTES,
    ...overrides,
  };
}

function validator(
  overrides: Partial<SamlModuleOptions> = {},
  idpOverrides: Record<string, unknown> = {},
): SamlValidator {
  return new SamlValidator(resolveSamlOptions(options(overrides, idpOverrides)));
}

async function codeOf(promise: Promise<unknown>): Promise<ShieldErrorCode | 'accepted'> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    if (!isShieldError(err)) throw err;
    return err.code;
  }
}

beforeAll(async () => {
  const [idpKeys, otherKeys, attacker] = await Promise.all([
    createSigningIdentity({ commonName: 'corp IdP' }),
    createSigningIdentity({ commonName: 'other IdP' }),
    createSigningIdentity({ commonName: 'attacker' }),
  ]);
  ctx = {
    idp: new TestIdp(IDP_ENTITY_ID, idpKeys, TARGET),
    otherIdp: new TestIdp(OTHER_IDP_ENTITY_ID, otherKeys, TARGET),
    attacker,
    maxMessageBytes: MAX_BYTES,
  };
});

describe('validateSamlResponse (browser SSO)', () => {
  it.each(ACS_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    // A fresh validator per case: a replay-cache hit from another row cannot mask the expected code.
    expect(await codeOf(validator().validateSamlResponse(c.build(ctx)))).toBe(c.code ?? 'accepted');
  });

  it('returns the principal read from the verified assertion, attributes mapped', async () => {
    const p: SamlPrincipal = await validator().validateSamlResponse(
      base64(
        ctx.idp.response({
          assertion: { nameId: 'bob@example.com', attributes: { groups: ['model-users', 'x'] } },
        }),
      ),
    );
    expect(p).toMatchObject({
      method: 'saml',
      subject: 'bob@example.com',
      issuer: IDP_ENTITY_ID,
      idp: 'corp',
      scopes: ['openid', 'models:infer'],
      roles: ['user'],
    });
    expect(p.attributes['groups']).toEqual(['model-users', 'x']);
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('refuses a replay of an IdP-initiated response', async () => {
    const v = validator();
    const msg = base64(ctx.idp.response());
    expect(await codeOf(v.validateSamlResponse(msg))).toBe('accepted');
    expect(await codeOf(v.validateSamlResponse(msg))).toBe('ERR_SAML_REPLAY');
  });

  it('refuses a replay of the same assertion in a re-wrapped response', async () => {
    const v = validator();
    const first = ctx.idp.response();
    const assertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(first)?.[0] ?? '';
    const rewrapped = ctx.idp
      .response({ signAssertion: false })
      .replace(/<saml:Assertion[\s\S]*<\/saml:Assertion>/, assertion);
    expect(await codeOf(v.validateSamlResponse(base64(first)))).toBe('accepted');
    expect(await codeOf(v.validateSamlResponse(base64(rewrapped)))).toBe('ERR_SAML_REPLAY');
  });

  describe('InResponseTo (SP-initiated)', () => {
    it('accepts a response to a request we sent to that IdP, once; its replay is refused', async () => {
      const resolved = resolveSamlOptions(options({}, { allowIdpInitiated: false }));
      const v = new SamlValidator(resolved);
      const requestId = newId();
      await resolved.requestStore.save(requestId, 'corp', new Date(Date.now() + 60_000));
      const msg = base64(ctx.idp.response({ inResponseTo: requestId }));
      expect(await codeOf(v.validateSamlResponse(msg))).toBe('accepted');
      expect(await codeOf(v.validateSamlResponse(msg))).toBe('ERR_SAML_REPLAY');
    });

    it('refuses a second response to the same request (another assertion)', async () => {
      const resolved = resolveSamlOptions(options({}, { allowIdpInitiated: false }));
      const v = new SamlValidator(resolved);
      const requestId = newId();
      await resolved.requestStore.save(requestId, 'corp', new Date(Date.now() + 60_000));
      expect(
        await codeOf(v.validateSamlResponse(base64(ctx.idp.response({ inResponseTo: requestId })))),
      ).toBe('accepted');
      expect(
        await codeOf(v.validateSamlResponse(base64(ctx.idp.response({ inResponseTo: requestId })))),
      ).toBe('ERR_SAML_IN_RESPONSE_TO_INVALID');
    });

    it.each([
      ['an unknown request ID', 'corp', false],
      ['a request sent to another IdP', 'other', true],
    ])('refuses a response to %s', async (_name, sentTo, save) => {
      const resolved = resolveSamlOptions(options());
      const v = new SamlValidator(resolved);
      const requestId = newId();
      if (save) await resolved.requestStore.save(requestId, sentTo, new Date(Date.now() + 60_000));
      expect(
        await codeOf(v.validateSamlResponse(base64(ctx.idp.response({ inResponseTo: requestId })))),
      ).toBe('ERR_SAML_IN_RESPONSE_TO_INVALID');
    });

    it('refuses an expired request', async () => {
      const resolved = resolveSamlOptions(options());
      const v = new SamlValidator(resolved);
      const requestId = newId();
      await resolved.requestStore.save(requestId, 'corp', new Date(Date.now() - 1));
      expect(
        await codeOf(v.validateSamlResponse(base64(ctx.idp.response({ inResponseTo: requestId })))),
      ).toBe('ERR_SAML_IN_RESPONSE_TO_INVALID');
    });

    it('refuses Response and assertion InResponseTo that disagree', async () => {
      const resolved = resolveSamlOptions(options());
      const v = new SamlValidator(resolved);
      const a = newId();
      await resolved.requestStore.save(a, 'corp', new Date(Date.now() + 60_000));
      const msg = ctx.idp.response({ inResponseTo: a, assertion: { inResponseTo: newId() } });
      expect(await codeOf(v.validateSamlResponse(base64(msg)))).toBe('ERR_SAML_IN_RESPONSE_TO_INVALID');
    });

    it('refuses an unsolicited (IdP-initiated) response unless allowed', async () => {
      const v = validator({}, { allowIdpInitiated: false });
      expect(await codeOf(v.validateSamlResponse(base64(ctx.idp.response())))).toBe(
        'ERR_SAML_IN_RESPONSE_TO_INVALID',
      );
    });
  });

  it('requires a signed response when configured', async () => {
    const v = validator({}, { requireSignedResponse: true });
    expect(await codeOf(v.validateSamlResponse(base64(ctx.idp.response())))).toBe(
      'ERR_SAML_SIGNATURE_INVALID',
    );
    expect(await codeOf(v.validateSamlResponse(base64(ctx.idp.response({ signResponse: true }))))).toBe(
      'accepted',
    );
  });

  it('accepts a key rollover: any pinned certificate verifies', async () => {
    const next = await createSigningIdentity({ commonName: 'corp IdP next' });
    const v = validator({}, { signingCertificates: [ctx.idp.keys.certPem, next.certPem] });
    const rolled = new TestIdp(IDP_ENTITY_ID, next, TARGET);
    expect(await codeOf(v.validateSamlResponse(base64(rolled.response())))).toBe('accepted');
    expect(await codeOf(v.validateSamlResponse(base64(ctx.idp.response())))).toBe('accepted');
  });

  it('refuses when the replay cache cannot answer (503), never lets the assertion through', async () => {
    const v = validator({ replayCache: { consumeOnce: () => Promise.reject(new Error('down')) } });
    expect(await codeOf(v.validateSamlResponse(base64(ctx.idp.response())))).toBe('ERR_NOT_READY');
  });
});

describe('validateSamlBearerAssertion (RFC 7522)', () => {
  it.each(GRANT_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    expect(await codeOf(validator().validateSamlBearerAssertion(c.build(ctx)))).toBe(c.code ?? 'accepted');
  });

  it('refuses a replay', async () => {
    const v = validator();
    const msg = base64url(ctx.idp.grantAssertion());
    expect(await codeOf(v.validateSamlBearerAssertion(msg))).toBe('accepted');
    expect(await codeOf(v.validateSamlBearerAssertion(msg))).toBe('ERR_SAML_REPLAY');
  });

  it('refuses every assertion when no grant is configured', async () => {
    const v = validator({ grant: undefined }, { allowBearerGrant: false });
    expect(await codeOf(v.validateSamlBearerAssertion(base64url(ctx.idp.grantAssertion())))).toBe(
      'ERR_SAML_GRANT_INVALID',
    );
  });
});
