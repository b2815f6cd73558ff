/**
 * Shared set-up of the SAML attack specs: one real IdP signing key (RSA, as every SAML IdP), the
 * module options of a typical deployment, and an app built from them, started by the harness
 * (`test/support/harness.ts`) behind the real bootstrap's gates. The message builders come from
 * the SAML suite's own IdP (`test/saml/support`), so the attacks start from the same real signed
 * messages.
 */
import { inflateRawSync } from 'node:zlib';
import { Module, type LoggerService, type Type } from '@nestjs/common';
import { SAML2_BEARER_GRANT_TYPE, SamlModule, type SamlModuleOptions } from '@inference-shield/saml';
import { DOMParser } from '@xmldom/xmldom';
import type { TestPki } from '@inference-shield/dev-pki';
import { startApp, testPki, type CallResult, type TestApp } from '../../support/harness.js';
import { createSigningIdentity, TestIdp, type TestIdpTarget } from '../../saml/support/test-idp.js';

export const SP_ENTITY_ID = 'https://sp.attack.local/saml';
export const IDP_ENTITY_ID = 'https://idp.attack.local/saml/metadata';
export const TARGET: TestIdpTarget = {
  acsUrl: 'https://sp.attack.local/saml/acs',
  audience: SP_ENTITY_ID,
  tokenEndpointUrl: 'https://sp.attack.local/oauth/token',
  grantAudience: 'https://sp.attack.local/oauth',
};

/** A configured IdP (its key pinned by the SP) and the server PKI of the SP. */
export interface AttackContext {
  readonly idp: TestIdp;
  readonly pki: TestPki;
}

export async function createAttackContext(): Promise<AttackContext> {
  const [keys, pki] = await Promise.all([
    createSigningIdentity({ commonName: 'corp IdP' }),
    testPki('saml-attack'),
  ]);
  return { idp: new TestIdp(IDP_ENTITY_ID, keys, TARGET), pki };
}

/** The options of one SP with one IdP; `idp` overrides that IdP's fields, `top` the module's. */
export function samlOptions(
  ctx: AttackContext,
  idp: Record<string, unknown> = {},
  top: Partial<SamlModuleOptions> = {},
): SamlModuleOptions {
  return {
    serviceProvider: { entityId: SP_ENTITY_ID, acsUrl: TARGET.acsUrl },
    identityProviders: [
      {
        name: 'corp',
        entityId: IDP_ENTITY_ID,
        ssoUrl: 'https://idp.attack.local/sso',
        signingCertificates: [ctx.idp.keys.certPem],
        allowBearerGrant: true,
        ...idp,
      },
    ],
    tokens: { issuer: 'https://sp.attack.local', audience: 'inference', signingKey: 'ephemeral' },
    grant: { tokenEndpointUrl: TARGET.tokenEndpointUrl, audience: TARGET.grantAudience },
    ...top,
  };
}

/** Starts `SamlModule.forRoot(options)` with the real bootstrap on 127.0.0.1:0. */
export async function startSamlApp(
  ctx: AttackContext,
  options: SamlModuleOptions,
  adapter: 'express' | 'fastify' = 'express',
  logger: LoggerService | false = false,
): Promise<TestApp> {
  @Module({ imports: [SamlModule.forRoot(options)] })
  class AttackAppModule {}
  return startApp(AttackAppModule as Type, { pki: ctx.pki, logger, adapter });
}

/** POST /saml/acs with a form `SAMLResponse`. */
export function postAcs(app: TestApp, samlResponse: string): Promise<CallResult> {
  return app.call('/saml/acs', { form: { SAMLResponse: samlResponse } });
}

/** POST /oauth/token with the RFC 7522 grant. */
export function postGrant(app: TestApp, assertion: string): Promise<CallResult> {
  return app.call('/oauth/token', {
    form: { grant_type: SAML2_BEARER_GRANT_TYPE, assertion },
  });
}

/**
 * GET /saml/login as anybody can, and the AuthnRequest ID read back from the redirect: what an
 * attacker learns by starting a login himself.
 */
export async function startLogin(app: TestApp): Promise<string> {
  const res = await app.call('/saml/login?idp=corp');
  if (res.status !== 302 || res.headers.location === undefined) {
    throw new Error(`login answered ${res.status}`);
  }
  const request = new URL(res.headers.location).searchParams.get('SAMLRequest') ?? '';
  const xml = inflateRawSync(Buffer.from(request, 'base64')).toString('utf8');
  const id = new DOMParser().parseFromString(xml, 'text/xml').documentElement?.getAttribute('ID');
  if (id === null || id === undefined || id === '') throw new Error('no AuthnRequest ID');
  return id;
}

/** Status and catalogue code of a refusal, or `200` and `accepted`. */
export function outcome(res: CallResult): { status: number; code: unknown } {
  return {
    status: res.status,
    code: typeof res.body['access_token'] === 'string' ? 'accepted' : res.body['code'],
  };
}
