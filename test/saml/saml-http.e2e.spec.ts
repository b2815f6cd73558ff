import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Get, Module, type Type } from '@nestjs/common';
import { ERROR_CATALOGUE } from '@inference-shield/core';
import {
  Allow,
  IdentityModule,
  oidc,
  Principal,
  saml,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import {
  SAML2_BEARER_GRANT_TYPE,
  SamlModule,
  samlLocalIssuer,
  SamlTokenSigner,
  type SamlAuditEvent,
  type SamlModuleOptions,
} from '@inference-shield/saml';
import { DOMParser, type Document } from '@xmldom/xmldom';
import { decodeJwt, decodeProtectedHeader } from 'jose';
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
import type { TestPki } from '@inference-shield/dev-pki';
import { CaptureLogger, startApp, testPki, type TestApp } from '../support/harness.js';
import { base64, base64url, createSigningIdentity, TestIdp, type TestIdpTarget } from './support/test-idp.js';

const TARGET: TestIdpTarget = {
  acsUrl: 'https://sp.shield.local/saml/acs',
  audience: SP_ENTITY_ID,
  tokenEndpointUrl: 'https://sp.shield.local/oauth/token',
  grantAudience: 'https://sp.shield.local/oauth',
};
// Below Express's default 100 kB form limit, so our own cap is what refuses oversized messages.
const MAX_BYTES = 32_768;
const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';

@Controller('v1')
class ModelController {
  @Get('whoami')
  @Allow(saml({ scopes: ['models:infer'] }))
  whoami(@Principal() p: ShieldPrincipal): Record<string, unknown> {
    return { method: p.method, subject: p.subject, issuer: p.issuer, scopes: p.scopes, idp: p.claims['idp'] };
  }

  @Get('oidc-only')
  @Allow(oidc())
  oidcOnly(): string {
    return 'no';
  }
}

let pki: TestPki;
let ctx: CaseContext;
let running: TestApp;
const logger = new CaptureLogger();
const audit: SamlAuditEvent[] = [];
/** Every credential sent or received, to check none reached a log line. */
const secrets: string[] = [];

function samlOptions(): SamlModuleOptions {
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
          rules: [{ attribute: 'groups', equals: 'model-users', scopes: ['models:infer', 'models:list'] }],
        },
      },
      {
        name: 'other',
        entityId: OTHER_IDP_ENTITY_ID,
        ssoUrl: 'https://other-idp.example/sso',
        signingCertificates: [ctx.otherIdp.keys.certPem],
      },
    ],
    tokens: { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, signingKey: 'ephemeral', ttlSeconds: 120 },
    grant: { tokenEndpointUrl: TARGET.tokenEndpointUrl, audience: TARGET.grantAudience },
    maxMessageBytes: MAX_BYTES,
    audit: { sink: { record: (e) => audit.push(e) } },
  };
}

function appModule(): Type {
  @Module({
    imports: [
      SamlModule.forRoot(samlOptions()),
      IdentityModule.forRootAsync({
        inject: [SamlTokenSigner],
        useFactory: (signer: SamlTokenSigner) => ({ oidc: { issuers: [samlLocalIssuer(signer)] } }),
      }),
    ],
    controllers: [ModelController],
  })
  class AppModule {}
  return AppModule;
}

async function acs(samlResponse: string, relayState?: string) {
  secrets.push(samlResponse.slice(0, 64));
  const form: Record<string, string> = { SAMLResponse: samlResponse };
  if (relayState !== undefined) form['RelayState'] = relayState;
  const res = await running.call('/saml/acs', { form });
  if (typeof res.body['access_token'] === 'string') secrets.push(res.body['access_token']);
  return res;
}

async function grant(assertion: string, extra: Record<string, string | string[]> = {}) {
  secrets.push(assertion.slice(0, 64));
  const res = await running.call('/oauth/token', {
    form: { grant_type: SAML2_BEARER_GRANT_TYPE, assertion, ...extra },
  });
  if (typeof res.body['access_token'] === 'string') secrets.push(res.body['access_token']);
  return res;
}

beforeAll(async () => {
  const [serverPki, idpKeys, otherKeys, attacker] = await Promise.all([
    testPki('saml'),
    createSigningIdentity({ commonName: 'corp IdP' }),
    createSigningIdentity({ commonName: 'other IdP' }),
    createSigningIdentity({ commonName: 'attacker' }),
  ]);
  pki = serverPki;
  ctx = {
    idp: new TestIdp(IDP_ENTITY_ID, idpKeys, TARGET),
    otherIdp: new TestIdp(OTHER_IDP_ENTITY_ID, otherKeys, TARGET),
    attacker,
    maxMessageBytes: MAX_BYTES,
  };
  running = await startApp(appModule(), { pki, logger });
});

afterAll(async () => {
  await running?.close();
});

describe('POST /saml/acs (browser SSO, HTTP-POST binding)', () => {
  it.each(ACS_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const res = await acs(c.build(ctx));
    if (c.code === undefined) {
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        token_type: 'Bearer',
        expires_in: 120,
        scope: 'models:infer models:list',
      });
      expect(res.headers['cache-control']).toBe('no-store');
    } else {
      expect({ status: res.status, code: res.body['code'] }).toEqual({
        status: ERROR_CATALOGUE[c.code].status,
        code: c.code,
      });
      // The body is the catalogue's: code and reason, nothing of the message.
      expect(Object.keys(res.body).sort()).toEqual(['code', 'message']);
    }
  });

  it('issues a token the identity guard accepts as method saml', async () => {
    const res = await acs(base64(ctx.idp.response({ assertion: { nameId: 'carol@example.com' } })));
    expect(res.status).toBe(200);
    const token = res.body['access_token'] as string;
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    expect(decodeJwt(token)).toMatchObject({
      iss: TOKEN_ISSUER,
      aud: TOKEN_AUDIENCE,
      sub: 'carol@example.com',
      amr: ['saml'],
      idp: IDP_ENTITY_ID,
      client_id: SP_ENTITY_ID,
    });
    const who = await running.call('/v1/whoami', { token });
    expect(who.status).toBe(200);
    expect(who.body).toEqual({
      method: 'saml',
      subject: 'carol@example.com',
      issuer: TOKEN_ISSUER,
      scopes: ['models:infer', 'models:list'],
      idp: IDP_ENTITY_ID,
    });
    // A route that accepts OIDC issuers only refuses the SAML-exchange token.
    expect((await running.call('/v1/oidc-only', { token })).status).toBe(401);
  });

  it('grants no scope the attribute mapping does not give', async () => {
    const res = await acs(base64(ctx.idp.response({ assertion: { attributes: { groups: ['visitors'] } } })));
    expect(res.status).toBe(200);
    expect(res.body['scope']).toBeUndefined();
    const who = await running.call('/v1/whoami', { token: res.body['access_token'] as string });
    expect(who.status).toBe(403);
    expect(who.body['code']).toBe('ERR_INSUFFICIENT_SCOPE');
  });

  it("reads its form itself when the host app turned Nest's body parsers off", async () => {
    const bare = await startApp(appModule(), { pki, nest: { bodyParser: false } });
    try {
      const form = { SAMLResponse: base64(ctx.idp.response({ assertion: { nameId: 'dave@example.com' } })) };
      const res = await bare.call('/saml/acs', { form });
      expect(res.status).toBe(200);
      expect(decodeJwt(res.body['access_token'] as string)).toMatchObject({ sub: 'dave@example.com' });
      const text = await bare.call('/saml/acs', { headers: { 'content-type': 'text/plain' }, body: 'x' });
      expect(text.status).toBe(415);
      expect(text.body).toMatchObject({ code: 'ERR_UNSUPPORTED_MEDIA_TYPE' });
    } finally {
      await bare.close();
    }
  });

  it('refuses a replay (IdP-initiated)', async () => {
    const msg = base64(ctx.idp.response());
    expect((await acs(msg)).status).toBe(200);
    const again = await acs(msg);
    expect({ status: again.status, code: again.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_SAML_REPLAY',
    });
  });

  it('refuses a form without SAMLResponse, a JSON body, and a repeated field', async () => {
    const missing = await running.call('/saml/acs', { form: { RelayState: 'x' } });
    expect(missing.body['code']).toBe('ERR_SAML_MALFORMED');
    const json = await running.call('/saml/acs', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ SAMLResponse: base64(ctx.idp.response()) }),
    });
    expect({ status: json.status, code: json.body['code'] }).toEqual({
      status: 415,
      code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
    });
    const twice = await running.call('/saml/acs', {
      form: { SAMLResponse: [base64(ctx.idp.response()), base64(ctx.idp.response())] },
    });
    expect(twice.body['code']).toBe('ERR_SAML_MALFORMED');
  });

  it('refuses a RelayState longer than 80 bytes (SAML bindings §3.5.3)', async () => {
    const res = await acs(base64(ctx.idp.response()), 'r'.repeat(81));
    expect(res.body['code']).toBe('ERR_SAML_MALFORMED');
  });

  it('refuses a body over the HTTP limit before SAML sees it', async () => {
    const res = await running.call('/saml/acs', { form: { SAMLResponse: 'A'.repeat(200_000) } });
    expect(res.status).toBe(413);
  });
});

describe('GET /saml/login → IdP → POST /saml/acs (SP-initiated)', () => {
  async function login(
    query: string,
    ssoUrl = 'https://idp.example/sso',
  ): Promise<{ id: string; relayState: string | null; request: Document }> {
    const res = await running.call(`/saml/login${query}`);
    expect(res.status).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const location = new URL(res.headers.location ?? '');
    expect(location.origin + location.pathname).toBe(ssoUrl);
    const xml = inflateRawSync(
      Buffer.from(location.searchParams.get('SAMLRequest') ?? '', 'base64'),
    ).toString('utf8');
    const request = new DOMParser().parseFromString(xml, 'text/xml');
    return {
      id: request.documentElement?.getAttribute('ID') ?? '',
      relayState: location.searchParams.get('RelayState'),
      request,
    };
  }

  it('sends an AuthnRequest and accepts the response to it, once', async () => {
    const { id, relayState, request } = await login('?idp=corp&RelayState=%2Fhome');
    const root = request.documentElement;
    if (root === null) throw new Error('no AuthnRequest');
    expect(root.localName).toBe('AuthnRequest');
    expect(root.getAttribute('Destination')).toBe('https://idp.example/sso');
    expect(root.getAttribute('AssertionConsumerServiceURL')).toBe(TARGET.acsUrl);
    expect(root.getElementsByTagNameNS(NS_ASSERTION, 'Issuer')[0]?.textContent).toBe(SP_ENTITY_ID);
    expect(relayState).toBe('/home');

    const msg = base64(ctx.idp.response({ inResponseTo: id }));
    const ok = await acs(msg, '/home');
    expect(ok.status).toBe(200);
    expect(ok.body['relay_state']).toBe('/home');
    expect((await acs(msg)).body['code']).toBe('ERR_SAML_REPLAY');
    expect((await acs(base64(ctx.idp.response({ inResponseTo: id })))).body['code']).toBe(
      'ERR_SAML_IN_RESPONSE_TO_INVALID',
    );
  });

  it('refuses a response to a request sent to another IdP', async () => {
    const { id } = await login('?idp=other', 'https://other-idp.example/sso');
    expect((await acs(base64(ctx.idp.response({ inResponseTo: id })))).body['code']).toBe(
      'ERR_SAML_IN_RESPONSE_TO_INVALID',
    );
  });

  it.each([
    ['no idp while several are configured', ''],
    ['an unknown idp', '?idp=nope'],
    ['a RelayState over 80 bytes', `?idp=corp&RelayState=${'r'.repeat(81)}`],
    ['a repeated idp', '?idp=corp&idp=other'],
  ])('answers 400 to %s', async (_name, query) => {
    const res = await running.call(`/saml/login${query}`);
    expect({ status: res.status, code: res.body['code'] }).toEqual({ status: 400, code: 'ERR_BAD_REQUEST' });
  });
});

describe('POST /oauth/token (RFC 7522 SAML 2.0 bearer grant)', () => {
  it.each(GRANT_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const res = await grant(c.build(ctx));
    expect(res.headers['cache-control']).toBe('no-store');
    if (c.code === undefined) {
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        token_type: 'Bearer',
        expires_in: 120,
        scope: 'models:infer models:list',
      });
    } else {
      // RFC 7522 §3.1: an invalid assertion is an RFC 6749 §5.2 invalid_grant (400); our code stays in the body.
      expect({ status: res.status, body: res.body }).toEqual({
        status: 400,
        body: { error: 'invalid_grant', error_description: ERROR_CATALOGUE[c.code].reason, code: c.code },
      });
    }
  });

  it('issues a token the identity guard accepts, narrowed to the requested scope', async () => {
    const res = await grant(base64url(ctx.idp.grantAssertion({ nameId: 'svc-batch' })), {
      scope: 'models:infer',
    });
    expect(res.status).toBe(200);
    expect(res.body['scope']).toBe('models:infer');
    const who = await running.call('/v1/whoami', { token: res.body['access_token'] as string });
    expect(who.body).toMatchObject({ method: 'saml', subject: 'svc-batch', scopes: ['models:infer'] });
  });

  it('answers a scope the assertion does not give with invalid_scope, leaving the assertion unspent', async () => {
    const assertion = base64url(ctx.idp.grantAssertion({ nameId: 'svc-greedy' }));
    for (const scope of ['admin', 'models:infer admin']) {
      const refused = await grant(assertion, { scope });
      expect(refused.status).toBe(400);
      expect(refused.body).toEqual({
        error: 'invalid_scope',
        error_description: 'The requested scope exceeds what the assertion grants.',
        code: 'ERR_SAML_SCOPE_INVALID',
      });
      expect(refused.headers['cache-control']).toBe('no-store');
    }
    // RFC 6749 §5.2: nothing was issued, so the same assertion still works once, with a scope it gives.
    const ok = await grant(assertion, { scope: 'models:infer' });
    expect(ok.status).toBe(200);
    expect(ok.body['scope']).toBe('models:infer');
    expect((await grant(assertion, { scope: 'models:infer' })).body).toMatchObject({
      code: 'ERR_SAML_REPLAY',
    });
  });

  it('refuses a replay', async () => {
    const assertion = base64url(ctx.idp.grantAssertion());
    expect((await grant(assertion)).status).toBe(200);
    expect((await grant(assertion)).body).toMatchObject({ error: 'invalid_grant', code: 'ERR_SAML_REPLAY' });
  });

  it.each([
    [
      'another grant type',
      { grant_type: 'client_credentials' },
      'unsupported_grant_type',
      'ERR_SAML_GRANT_TYPE_UNSUPPORTED',
    ],
    ['no assertion', { grant_type: SAML2_BEARER_GRANT_TYPE }, 'invalid_request', 'ERR_SAML_GRANT_INVALID'],
    [
      'the assertion twice',
      { grant_type: SAML2_BEARER_GRANT_TYPE, assertion: ['a', 'b'] },
      'invalid_request',
      'ERR_SAML_GRANT_INVALID',
    ],
    [
      'a malformed scope',
      { grant_type: SAML2_BEARER_GRANT_TYPE, assertion: 'a', scope: 'a  b' },
      'invalid_request',
      'ERR_SAML_GRANT_INVALID',
    ],
  ])('answers %s with 400 %s', async (_name, form, error, code) => {
    const res = await running.call('/oauth/token', {
      form: form as Record<string, string | string[]>,
    });
    expect({ status: res.status, error: res.body['error'], code: res.body['code'] }).toEqual({
      status: 400,
      error,
      code,
    });
  });

  it('refuses a JSON body (RFC 6749 §3.2 requires a form)', async () => {
    const res = await running.call('/oauth/token', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: SAML2_BEARER_GRANT_TYPE,
        assertion: base64url(ctx.idp.grantAssertion()),
      }),
    });
    expect({ status: res.status, error: res.body['error'] }).toEqual({
      status: 400,
      error: 'invalid_request',
    });
  });
});

describe('metadata and keys', () => {
  it('serves the SP metadata', async () => {
    const res = await running.call('/saml/metadata');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('application/samlmetadata+xml');
    const doc = new DOMParser().parseFromString(res.text, 'text/xml');
    const root = doc.documentElement;
    expect(root?.getAttribute('entityID')).toBe(SP_ENTITY_ID);
    const acsEl = doc
      .getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'AssertionConsumerService')
      .item(0);
    expect(acsEl?.getAttribute('Location')).toBe(TARGET.acsUrl);
    expect(acsEl?.getAttribute('Binding')).toBe('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
  });

  it('serves the token public key only', async () => {
    const res = await running.call('/saml/jwks');
    expect(res.status).toBe(200);
    const keys = res.body['keys'] as Record<string, unknown>[];
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
  });
});

describe('audit and logs', () => {
  it('records each decision without assertion content', () => {
    expect(
      audit.some(
        (e) => e.decision === 'allow' && e.route === 'POST /saml/acs' && e.subject === 'carol@example.com',
      ),
    ).toBe(true);
    expect(
      audit.some(
        (e) => e.decision === 'deny' && e.code === 'ERR_SAML_REPLAY' && e.route === 'POST /oauth/token',
      ),
    ).toBe(true);
    // A refused assertion's NameID is attacker-controlled: deny events carry the code only.
    for (const e of audit.filter((x) => x.decision === 'deny'))
      expect(Object.keys(e).sort()).toEqual(['code', 'decision', 'method', 'route', 'time']);
  });

  it('never logs a SAML message, a forged NameID or a token', () => {
    expect(secrets.length).toBeGreaterThan(50);
    const log = logger.lines.join('\n');
    for (const s of secrets) expect(log).not.toContain(s);
    expect(log).not.toContain('admin@example.com');
    expect(log).not.toContain('BEGIN PRIVATE KEY');
  });
});

describe('the same ways in on the Fastify adapter', () => {
  let fastify: TestApp;

  beforeAll(async () => {
    fastify = await startApp(appModule(), { pki, adapter: 'fastify' });
  });

  afterAll(async () => {
    await fastify?.close();
  });

  it('browser SSO: a valid response gives a token the guard accepts; XSW and replays are refused', async () => {
    const msg = base64(ctx.idp.response({ assertion: { nameId: 'dave@example.com' } }));
    const ok = await fastify.call('/saml/acs', { form: { SAMLResponse: msg } });
    expect(ok.status).toBe(200);
    const who = await fastify.call('/v1/whoami', { token: ok.body['access_token'] as string });
    expect(who.body).toMatchObject({ method: 'saml', subject: 'dave@example.com' });
    const replay = await fastify.call('/saml/acs', { form: { SAMLResponse: msg } });
    expect({ status: replay.status, code: replay.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_SAML_REPLAY',
    });
    const xsw = await fastify.call('/saml/acs', {
      form: {
        SAMLResponse: (
          ACS_CASES.find((c) => c.name === 'XSW1 on the assertion') as (typeof ACS_CASES)[number]
        ).build(ctx),
      },
    });
    expect({ status: xsw.status, code: xsw.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_SAML_STRUCTURE_INVALID',
    });
    const json = await fastify.call('/saml/acs', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ SAMLResponse: msg }),
    });
    expect(json.status).toBe(415);
  });

  it('RFC 7522 grant: valid → token; invalid → 400 invalid_grant', async () => {
    const form = { grant_type: SAML2_BEARER_GRANT_TYPE, assertion: base64url(ctx.idp.grantAssertion()) };
    expect((await fastify.call('/oauth/token', { form })).status).toBe(200);
    const replay = await fastify.call('/oauth/token', { form });
    expect({ status: replay.status, error: replay.body['error'], code: replay.body['code'] }).toEqual({
      status: 400,
      error: 'invalid_grant',
      code: 'ERR_SAML_REPLAY',
    });
  });

  it('login redirects to the IdP', async () => {
    const res = await fastify.call('/saml/login?idp=corp');
    expect(res.status).toBe(302);
    expect(res.headers.location).toMatch(/^https:\/\/idp\.example\/sso\?SAMLRequest=/);
  });
});
