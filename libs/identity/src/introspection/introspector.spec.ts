import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { resolveTokenVerifierOptions } from '../tokens/token-verifier-options.js';
import type { JwksFetch } from '../tokens/jwks-fetch.js';
import { Introspector, isOpaqueToken } from './introspector.js';

const ISSUER = 'https://idp.example';
const AUD = 'https://api.example';
const NOW_S = 1_800_000_000;
const THUMB = 'A'.repeat(43);
const keyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
  type: 'pkcs8',
  format: 'pem',
}) as string;

let clock = NOW_S * 1000;
const open: Introspector[] = [];

/** A fetch answering `answer` (JSON) with `status`, counting calls: this unit's only stand-in. */
function answering(answer: unknown, status = 200, type = 'application/json') {
  const calls: { url: string; body: string }[] = [];
  const fetch = (async (url: string, init: { body?: unknown }) => {
    calls.push({ url, body: String(init.body) });
    return new Response(typeof answer === 'string' ? answer : JSON.stringify(answer), {
      status,
      headers: { 'content-type': type },
    });
  }) as unknown as JwksFetch;
  return { fetch, calls };
}

async function introspector(
  fetch: JwksFetch,
  extra: Record<string, unknown> = {},
  issuerExtra: Record<string, unknown> = {},
): Promise<Introspector> {
  const options = resolveTokenVerifierOptions({
    issuers: [
      {
        ...issuerExtra,
        issuer: ISSUER,
        resource: AUD,
        jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }] },
        introspection: {
          endpoint: `${ISSUER}/introspect`,
          clientId: 'rs',
          clientAuth: { method: 'private_key_jwt', key: { pem: keyPem } },
          ...extra,
        },
      },
    ],
    opaqueTokenIssuer: ISSUER,
  });
  const issuer = options.issuers[0];
  if (issuer?.introspection === undefined) throw new Error('no introspection');
  const created = await Introspector.create(
    issuer,
    issuer.introspection,
    'issuers[0].introspection',
    { now: () => clock, fetch, closed: new AbortController().signal },
    100,
  );
  open.push(created);
  return created;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    return isShieldError(err) ? err.code : `not a ShieldError: ${String(err)}`;
  }
}

const active = {
  active: true,
  iss: ISSUER,
  aud: AUD,
  exp: NOW_S + 300,
  iat: NOW_S,
  client_id: 'c1',
  scope: 'a b',
};

afterEach(async () => {
  clock = NOW_S * 1000;
  await Promise.all(open.splice(0).map((i) => i.close()));
});

describe('isOpaqueToken', () => {
  it.each([
    ['abcDEF123-_', true],
    ['a.b.c', false],
    ['a.b.c.d.e', false],
    ['x.', false],
  ])('%s → %s', (token, opaque) => expect(isOpaqueToken(token)).toBe(opaque));
});

describe('an answer, judged', () => {
  it.each([
    ['active, ours', active, 'accepted'],
    ['active: false', { active: false }, 'ERR_TOKEN_INACTIVE'],
    ['active as a string', { ...active, active: 'true' }, 'ERR_INTROSPECTION_UNAVAILABLE'],
    ['another issuer', { ...active, iss: 'https://other.example' }, 'ERR_TOKEN_ISSUER_UNKNOWN'],
    ['no exp', { ...active, exp: undefined }, 'ERR_TOKEN_CLAIM_INVALID'],
    ['exp past', { ...active, exp: NOW_S - 60 }, 'ERR_TOKEN_EXPIRED'],
    ['nbf future', { ...active, nbf: NOW_S + 600 }, 'ERR_TOKEN_NOT_YET_VALID'],
    ['iat future', { ...active, iat: NOW_S + 600 }, 'ERR_TOKEN_ISSUED_IN_FUTURE'],
    ['no aud', { ...active, aud: undefined }, 'ERR_TOKEN_AUDIENCE_INVALID'],
    ['another aud', { ...active, aud: 'https://api.example/' }, 'ERR_TOKEN_AUDIENCE_INVALID'],
    ['aud list with ours', { ...active, aud: ['x', AUD] }, 'accepted'],
    ['token_type DPoP without cnf.jkt', { ...active, token_type: 'DPoP' }, 'ERR_TOKEN_TYPE_INVALID'],
    ['token_type DPoP with cnf.jkt', { ...active, token_type: 'DPoP', cnf: { jkt: THUMB } }, 'accepted'],
    ['token_type N_A', { ...active, token_type: 'N_A' }, 'ERR_TOKEN_TYPE_INVALID'],
    ['token_type bearer', { ...active, token_type: 'bearer' }, 'accepted'],
    ['cnf jkt (the decider checks the proof)', { ...active, cnf: { jkt: THUMB } }, 'accepted'],
    [
      'cnf with two members',
      { ...active, cnf: { jkt: THUMB, 'x5t#S256': THUMB } },
      'ERR_TOKEN_CLAIM_INVALID',
    ],
    ['cnf jkt not a thumbprint', { ...active, cnf: { jkt: 'short' } }, 'ERR_TOKEN_CLAIM_INVALID'],
    ['cnf x5t#S256', { ...active, cnf: { 'x5t#S256': THUMB } }, 'accepted'],
    ['empty cnf', { ...active, cnf: {} }, 'ERR_TOKEN_CLAIM_INVALID'],
    ['no sub, no client_id', { ...active, client_id: undefined }, 'ERR_TOKEN_CLAIM_INVALID'],
    ['empty sub', { ...active, sub: '' }, 'ERR_TOKEN_CLAIM_INVALID'],
    ['scope not a string', { ...active, scope: ['a'] }, 'ERR_TOKEN_CLAIM_INVALID'],
  ])('%s → %s', async (_name, answer, expected) => {
    const { fetch } = answering(answer);
    expect(await codeOf((await introspector(fetch)).introspect('tok'))).toBe(expected);
  });

  it.each([
    ['a 500', 500, active, 'application/json'],
    ['a 401 (our client authentication refused)', 401, { error: 'invalid_client' }, 'application/json'],
    ['a redirect', 302, '', 'text/plain'],
    ['HTML', 200, '<html>', 'text/html'],
    ['duplicate members', 200, '{"active":false,"active":true,"aud":"x"}', 'application/json'],
    ['an oversized answer', 200, JSON.stringify({ ...active, pad: 'x'.repeat(70_000) }), 'application/json'],
  ])('%s → 503 ERR_INTROSPECTION_UNAVAILABLE', async (_name, status, body, type) => {
    const { fetch } = answering(body, status, type);
    expect(await codeOf((await introspector(fetch)).introspect('tok'))).toBe('ERR_INTROSPECTION_UNAVAILABLE');
  });

  it('a DPoP-bound answer carries its key thumbprint, for the proof check', async () => {
    const { fetch } = answering({ ...active, token_type: 'DPoP', cnf: { jkt: THUMB } });
    const token = await (await introspector(fetch)).introspect('tok');
    expect(token.dpopKeyThumbprint).toBe(THUMB);
    expect(token.certificateThumbprint).toBeUndefined();
  });

  it('the principal: sub, else client_id; scopes; the binding', async () => {
    const { fetch } = answering({ ...active, cnf: { 'x5t#S256': THUMB } });
    const token = await (await introspector(fetch)).introspect('tok');
    expect(token).toMatchObject({
      issuer: ISSUER,
      subject: 'c1',
      scopes: ['a', 'b'],
      certificateThumbprint: THUMB,
    });
    expect(Object.isFrozen(token)).toBe(true);
  });
});

describe('an issuer that requires sender-constrained tokens', () => {
  it.each([
    ['a plain bearer answer', active, 'ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED'],
    [
      'token_type Bearer, no cnf',
      { ...active, token_type: 'Bearer' },
      'ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED',
    ],
    ['a DPoP-bound answer', { ...active, token_type: 'DPoP', cnf: { jkt: THUMB } }, 'accepted'],
    ['a certificate-bound answer', { ...active, cnf: { 'x5t#S256': THUMB } }, 'accepted'],
  ])('%s → %s', async (_name, answer, expected) => {
    const i = await introspector(answering(answer).fetch, {}, { requireSenderConstrained: true });
    expect(await codeOf(i.introspect('opaqueTokenAAAA'))).toBe(expected);
  });
});

describe('cache and single-flight', () => {
  it('concurrent requests share one call; later ones hit the cache; the token goes in the body only', async () => {
    const { fetch, calls } = answering(active);
    const i = await introspector(fetch);
    await Promise.all(Array.from({ length: 10 }, () => i.introspect('tok')));
    await i.introspect('tok');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe(`${ISSUER}/introspect`);
    expect(calls[0]?.body).toContain('token=tok');
    expect(i.stats()).toMatchObject({ calls: 1, sharedCalls: 9, cacheHits: 1, cacheEntries: 1 });
  });

  it('an answer is reused no longer than exp', async () => {
    const { fetch, calls } = answering({ ...active, exp: NOW_S + 10 });
    const i = await introspector(fetch, { maxCacheSeconds: 600 });
    await i.introspect('tok');
    clock += 9_000;
    await i.introspect('tok');
    expect(calls).toHaveLength(1);
    clock += 2_000;
    // Past exp: asked again (accepted within the clock tolerance, and not kept).
    expect(await codeOf(i.introspect('tok'))).toBe('accepted');
    expect(calls).toHaveLength(2);
    clock += 10_000;
    expect(await codeOf(i.introspect('tok'))).toBe('ERR_TOKEN_EXPIRED');
    expect(calls).toHaveLength(3);
  });

  it('an answer is reused no longer than maxCacheSeconds; 0 keeps nothing', async () => {
    const { fetch, calls } = answering(active);
    const i = await introspector(fetch, { maxCacheSeconds: 5 });
    await i.introspect('tok');
    clock += 6_000;
    await i.introspect('tok');
    expect(calls).toHaveLength(2);
    const none = answering(active);
    const j = await introspector(none.fetch, { maxCacheSeconds: 0 });
    await j.introspect('tok');
    await j.introspect('tok');
    expect(none.calls).toHaveLength(2);
  });

  it('an unavailable answer is never cached', async () => {
    const { fetch, calls } = answering({}, 503);
    const i = await introspector(fetch);
    expect(await codeOf(i.introspect('tok'))).toBe('ERR_INTROSPECTION_UNAVAILABLE');
    expect(await codeOf(i.introspect('tok'))).toBe('ERR_INTROSPECTION_UNAVAILABLE');
    expect(calls).toHaveLength(2);
  });

  it('beyond maxConcurrent calls in flight: 503 at once', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fetch = (async () => {
      await gate;
      return new Response(JSON.stringify(active), { headers: { 'content-type': 'application/json' } });
    }) as unknown as JwksFetch;
    const i = await introspector(fetch, { maxConcurrent: 2 });
    const first = i.introspect('t1');
    const second = i.introspect('t2');
    expect(await codeOf(i.introspect('t3'))).toBe('ERR_INTROSPECTION_UNAVAILABLE');
    release();
    expect(await codeOf(first)).toBe('accepted');
    expect(await codeOf(second)).toBe('accepted');
  });
});
