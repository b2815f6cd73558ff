import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Module, type Type } from '@nestjs/common';
import { isShieldError, type ShieldErrorCode } from '@inference-shield/core';
import {
  RedisSamlReplayCache,
  RedisSamlRequestStore,
  resolveSamlOptions,
  SamlModule,
  SamlValidator,
  type SamlModuleOptions,
} from '@inference-shield/saml/internal';
import { Redis } from 'ioredis';
import { IDP_ENTITY_ID, SP_ENTITY_ID, TOKEN_AUDIENCE, TOKEN_ISSUER } from './support/saml-cases.js';
import type { TestPki } from '@inference-shield/dev-pki';
import { startApp, testPki, type TestApp } from '../support/harness.js';
import { startRedis, type RunningRedis } from '../support/redis-server.js';
import { base64, createSigningIdentity, newId, TestIdp, type TestIdpTarget } from './support/test-idp.js';

const TARGET: TestIdpTarget = {
  acsUrl: 'https://sp.shield.local/saml/acs',
  audience: SP_ENTITY_ID,
  tokenEndpointUrl: 'https://sp.shield.local/oauth/token',
  grantAudience: SP_ENTITY_ID,
};

let redis: RunningRedis;
let idp: TestIdp;
const clients: Redis[] = [];

function client(): Redis {
  const c = redis.client();
  clients.push(c);
  return c;
}

/** One replica's options: its own Redis connection, the shared Redis server. */
function replicaOptions(keyPrefix = 'shield:saml:'): SamlModuleOptions {
  const c = client();
  return {
    serviceProvider: { entityId: SP_ENTITY_ID, acsUrl: TARGET.acsUrl },
    identityProviders: [
      {
        name: 'corp',
        entityId: IDP_ENTITY_ID,
        ssoUrl: 'https://idp.example/sso',
        signingCertificates: [idp.keys.certPem],
        allowIdpInitiated: true,
      },
    ],
    tokens: { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, signingKey: 'ephemeral' },
    replayCache: new RedisSamlReplayCache(c, { keyPrefix }),
    requestStore: new RedisSamlRequestStore(c, { keyPrefix }),
  };
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
  redis = await startRedis();
  idp = new TestIdp(IDP_ENTITY_ID, await createSigningIdentity(), TARGET);
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

describe('Redis stores (real redis-server)', () => {
  it('consumeOnce is true once per ID, with the key namespaced, hashed and expiring', async () => {
    const c = client();
    const cache = new RedisSamlReplayCache(c);
    const expiresAt = new Date(Date.now() + 120_000);
    const id = JSON.stringify([IDP_ENTITY_ID, '_assertion-1']);
    expect(await cache.consumeOnce(id, expiresAt)).toBe(true);
    expect(await cache.consumeOnce(id, expiresAt)).toBe(false);
    const keys = await c.keys('shield:saml:assertion:*');
    expect(keys.some((k) => /^shield:saml:assertion:[0-9a-f]{64}$/.test(k))).toBe(true);
    const ttl = await c.pttl(keys[0] as string);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120_000);
  });

  it('take returns the IdP once, then nothing', async () => {
    const store = new RedisSamlRequestStore(client());
    await store.save('_req-1', 'corp', new Date(Date.now() + 60_000));
    expect(await store.take('_req-1')).toBe('corp');
    expect(await store.take('_req-1')).toBeUndefined();
    expect(await store.take('_never-saved')).toBeUndefined();
  });

  it('two replicas sharing Redis: a replay on the other replica is refused', async () => {
    const a = new SamlValidator(resolveSamlOptions(replicaOptions()));
    const b = new SamlValidator(resolveSamlOptions(replicaOptions()));
    const msg = base64(idp.response());
    expect(await codeOf(a.validateSamlResponse(msg))).toBe('accepted');
    expect(await codeOf(b.validateSamlResponse(msg))).toBe('ERR_SAML_REPLAY');
  });

  it('the same assertion on both replicas at once: exactly one is accepted', async () => {
    const a = new SamlValidator(resolveSamlOptions(replicaOptions()));
    const b = new SamlValidator(resolveSamlOptions(replicaOptions()));
    for (let round = 0; round < 5; round++) {
      const msg = base64(idp.response());
      const codes = await Promise.all([
        codeOf(a.validateSamlResponse(msg)),
        codeOf(b.validateSamlResponse(msg)),
      ]);
      expect(codes.sort()).toEqual(['ERR_SAML_REPLAY', 'accepted']);
    }
  });

  it('SP-initiated across replicas: the request sent by one is answered on the other, once', async () => {
    const optsA = resolveSamlOptions(replicaOptions());
    const a = new SamlValidator(optsA);
    const b = new SamlValidator(resolveSamlOptions(replicaOptions()));
    const requestId = newId();
    await optsA.requestStore.save(requestId, 'corp', new Date(Date.now() + 60_000));
    const msg = base64(idp.response({ inResponseTo: requestId }));
    expect(await codeOf(b.validateSamlResponse(msg))).toBe('accepted');
    expect(await codeOf(a.validateSamlResponse(msg))).toBe('ERR_SAML_REPLAY');
    expect(await codeOf(a.validateSamlResponse(base64(idp.response({ inResponseTo: requestId }))))).toBe(
      'ERR_SAML_IN_RESPONSE_TO_INVALID',
    );
  });

  it('an unreachable Redis refuses with ERR_NOT_READY within the command timeout, never accepts', async () => {
    const dead = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, maxRetriesPerRequest: null });
    dead.on('error', () => undefined); // the refused connections are the point of this test
    clients.push(dead);
    const options = replicaOptions();
    const v = new SamlValidator(
      resolveSamlOptions({
        ...options,
        replayCache: new RedisSamlReplayCache(dead, { commandTimeoutMs: 200 }),
      }),
    );
    expect(await codeOf(v.validateSamlResponse(base64(idp.response())))).toBe('ERR_NOT_READY');
  });
});

describe('two app instances sharing Redis (HTTP)', () => {
  let pki: TestPki;
  let apps: TestApp[] = [];

  function appModule(): Type {
    @Module({ imports: [SamlModule.forRoot(replicaOptions('shield:saml:http:'))] })
    class ReplicaModule {}
    return ReplicaModule;
  }

  beforeAll(async () => {
    pki = await testPki('saml-redis');
    apps = [await startApp(appModule(), { pki }), await startApp(appModule(), { pki })];
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  it('a response accepted by one instance is refused as a replay by the other', async () => {
    const [a, b] = apps as [TestApp, TestApp];
    const form = { SAMLResponse: base64(idp.response()) };
    expect((await a.call('/saml/acs', { form })).status).toBe(200);
    const replay = await b.call('/saml/acs', { form });
    expect({ status: replay.status, code: replay.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_SAML_REPLAY',
    });
  });

  it('a login started on one instance completes on the other', async () => {
    const [a, b] = apps as [TestApp, TestApp];
    const login = await a.call('/saml/login');
    const redirect = new URL(login.headers.location ?? '');
    const xml = inflateRawSync(
      Buffer.from(redirect.searchParams.get('SAMLRequest') ?? '', 'base64'),
    ).toString();
    const id = /ID="([^"]+)"/.exec(xml)?.[1] ?? '';
    const form = { SAMLResponse: base64(idp.response({ inResponseTo: id })) };
    expect((await b.call('/saml/acs', { form })).status).toBe(200);
    expect((await a.call('/saml/acs', { form })).body['code']).toBe('ERR_SAML_REPLAY');
  });
});
