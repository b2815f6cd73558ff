import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Get, Module } from '@nestjs/common';
import {
  Allow,
  Authenticated,
  IdentityModule,
  mtls,
  Principal,
  RequireScopes,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import { createSigner, oidcOptions, type Signer } from '../../libs/identity/test/identity.fixtures.js';
import { startApp, type AppCallOptions, type TestApp } from '../support/harness.js';
import { createPki, optionalMtls, GW_ID, type Pki } from './support/workload-pki.js';

let pki: Pki;
let signer: Signer;
let running: TestApp;

@Controller('f')
class FastifyController {
  @Get('any') @Authenticated() any(@Principal() p: ShieldPrincipal) {
    return p;
  }
  @Get('infer') @RequireScopes('models:infer') infer(@Principal() p: ShieldPrincipal) {
    return p;
  }
  @Get('san') @Allow(mtls({ sans: ['dns:worker.internal'] })) san(@Principal() p: ShieldPrincipal) {
    return p;
  }
}

beforeAll(async () => {
  pki = await createPki();
  signer = await createSigner();
  // No trust-domain restriction here: certificates without a SPIFFE ID authenticate too.
  @Module({
    imports: [IdentityModule.forRoot({ oidc: oidcOptions(signer), mtls: {} })],
    controllers: [FastifyController],
  })
  class AppModule {}
  running = await startApp(AppModule, { ...optionalMtls(pki), adapter: 'fastify' });
});

afterAll(async () => {
  await running?.close();
});

const get = (path: string, opts: AppCallOptions = {}) => running.call(path, opts);

describe('IdentityGuard on the Fastify adapter (req.raw.socket)', () => {
  it('reads the verified client certificate', async () => {
    const r = await get('/f/any', { client: pki.gw });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      method: 'mtls',
      subject: GW_ID,
      spiffeId: GW_ID,
      certificateFingerprint: pki.gw.fingerprint256,
    });
  });

  it('names a certificate without SPIFFE ID by its common name', async () => {
    const r = await get('/f/any', { client: pki.plain });
    expect(r.body).toMatchObject({ method: 'mtls', subject: 'worker' });
    expect(r.body).not.toHaveProperty('spiffeId');
  });

  it('allow-lists by SAN', async () => {
    expect((await get('/f/san', { client: pki.plain })).status).toBe(200);
    const r = await get('/f/san', { client: pki.gw });
    expect([r.status, r.body.code]).toEqual([403, 'ERR_CALLER_NOT_ALLOWED']);
  });

  it('verifies bearer tokens and refuses with our codes', async () => {
    expect((await get('/f/infer', { token: signer.sign() })).body).toMatchObject({
      method: 'oidc',
      subject: 'alice',
    });
    const r = await get('/f/infer', { token: signer.sign({ scope: 'x' }) });
    expect([r.status, r.body.code]).toEqual([403, 'ERR_INSUFFICIENT_SCOPE']);
    expect(r.headers['www-authenticate']).toBe('Bearer error="insufficient_scope", scope="models:infer"');
  });

  it('refuses a certificate from an untrusted CA and a missing certificate', async () => {
    const foreign = await get('/f/san', { client: pki.foreign });
    expect([foreign.status, foreign.body.code]).toEqual([401, 'ERR_CLIENT_CERT_INVALID']);
    const none = await get('/f/san');
    expect([none.status, none.body.code]).toEqual([401, 'ERR_CLIENT_CERT_MISSING']);
  });
});

@Controller('f')
class TokenOnlyController {
  @Get('infer') @RequireScopes('models:infer') infer() {
    return { ok: true };
  }
}

describe('IdentityModule with startup: not-ready', () => {
  it('starts without its keys and answers 503 ERR_KEYSET_UNAVAILABLE, not 500, until they load', async () => {
    @Module({
      imports: [
        IdentityModule.forRoot({
          oidc: {
            issuers: [
              {
                issuer: 'https://idp.invalid',
                audience: 'x',
                jwksUri: 'https://127.0.0.1:9/jwks',
                fetchTimeoutMs: 200,
              },
            ],
            startup: 'not-ready',
          },
        }),
      ],
      controllers: [TokenOnlyController],
    })
    class NotReadyModule {}
    const app = await startApp(NotReadyModule, optionalMtls(pki));
    try {
      const token = signer.sign({ iss: 'https://idp.invalid', aud: 'x' });
      const r = await app.call('/f/infer', { token });
      expect([r.status, r.body.code]).toEqual([503, 'ERR_KEYSET_UNAVAILABLE']);
    } finally {
      await app.close();
    }
  });
});
