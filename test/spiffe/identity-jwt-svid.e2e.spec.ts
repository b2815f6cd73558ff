/**
 * JWT-SVIDs as a way in: IdentityModule with `tokens.jwtSvids`, the JWT bundles streamed from a
 * real Workload API server, tokens minted by that server's FetchJWTSVID. Accepted for a trusted
 * trust domain and our audience; refused for another audience, another trust domain, a key the
 * bundle dropped, or a forged signature; never logged.
 */
import 'reflect-metadata';
import { generateKeyPairSync } from 'node:crypto';
import { Controller, Get, Module } from '@nestjs/common';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Allow,
  IdentityModule,
  oidc,
  Principal,
  RequireScopes,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import { WorkloadApiSource } from '@inference-shield/spiffe';
import { CaptureLogger, startApp, type TestApp } from '../support/harness.js';
import {
  DevCertificateAuthority,
  issueSvid,
  startWorkloadApi,
  type TestWorkloadApi,
} from './support/workload-api.server.js';

const ID = 'spiffe://shield.local/gateway';
const AUDIENCE = 'https://inference.shield.local';

@Controller()
class WorkloadController {
  @Get('workload')
  @Allow(oidc({ issuers: ['spiffe://shield.local'] }))
  workload(@Principal() caller: ShieldPrincipal): { method: string; issuer: string; subject: string } {
    return { method: caller.method, issuer: caller.issuer, subject: caller.subject };
  }

  @Get('users')
  @Allow(oidc())
  users(): { ok: true } {
    return { ok: true };
  }

  @Get('scoped')
  @RequireScopes('models:infer')
  scoped(): { ok: true } {
    return { ok: true };
  }
}

let agent: TestWorkloadApi;
let source: WorkloadApiSource;
let app: TestApp;
const logger = new CaptureLogger();
const tokens: string[] = [];

async function svidFor(audience: string, spiffeId = ID): Promise<string> {
  const { token } = await source.jwtSvid(audience, { spiffeId });
  tokens.push(token);
  return token;
}

beforeAll(async () => {
  const ca = await DevCertificateAuthority.create();
  agent = await startWorkloadApi();
  agent.setX509({ svids: [await issueSvid(ca, ID)] });
  agent.setJwtBundles({
    'spiffe://shield.local': await agent.jwks(),
    'spiffe://partner.example': await agent.jwks(),
  });
  source = await WorkloadApiSource.connect({
    address: agent.address,
    jwtBundles: true,
    reconnectInitialDelayMs: 20,
    logger: { log() {}, warn() {}, error() {} },
  });

  @Module({
    imports: [
      IdentityModule.forRoot({
        oidc: {
          issuers: [],
          jwtSvids: { bundles: source, trustDomains: ['shield.local'], audience: AUDIENCE },
        },
      }),
    ],
    controllers: [WorkloadController],
  })
  class JwtSvidAppModule {}
  app = await startApp(JwtSvidAppModule, { logger, nest: { abortOnError: false } });
});

afterAll(async () => {
  await app?.close();
  source?.close();
  await agent?.close();
});

describe('JWT-SVIDs through the identity guard', () => {
  it('admits a JWT-SVID of a trusted trust domain for our audience', async () => {
    const res = await app.call('/workload', { token: await svidFor(AUDIENCE) });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ method: 'oidc', issuer: 'spiffe://shield.local', subject: ID });
  });

  it('is not a user token: a route that names no issuer refuses it (403)', async () => {
    const res = await app.call('/users', { token: await svidFor(AUDIENCE) });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'ERR_CALLER_NOT_ALLOWED' });
  });

  it('gives it no scopes: a route that needs one refuses it (403)', async () => {
    const res = await app.call('/scoped', { token: await svidFor(AUDIENCE) });
    expect(res.status).toBe(403);
  });

  it.each([
    ['another audience', () => svidFor('https://elsewhere.example'), 'ERR_TOKEN_AUDIENCE_INVALID'],
    [
      'a trust domain not configured',
      () => svidFor(AUDIENCE, 'spiffe://partner.example/gateway'),
      'ERR_TOKEN_ISSUER_UNKNOWN',
    ],
  ])('refuses %s with 401', async (_name, mint, code) => {
    const res = await app.call('/workload', { token: await mint() });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code });
  });

  it('refuses a JWT-SVID signed by another key under the bundle key id', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: agent.jwtKey.kid })
      .setSubject(ID)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(privateKey);
    const res = await app.call('/workload', { token: forged });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 'ERR_TOKEN_SIGNATURE_INVALID' });
  });

  it('refuses a token once its key leaves the JWT bundle', async () => {
    const token = await svidFor(AUDIENCE);
    expect((await app.call('/workload', { token })).status).toBe(200);
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = Buffer.from(
      JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'rotated', use: 'jwt-svid' }] }),
    );
    const changed = new Promise<void>((resolve) => {
      const stop = source.onJwtBundles(() => {
        stop();
        resolve();
      });
    });
    agent.setJwtBundles({ 'spiffe://shield.local': other });
    await changed;
    const res = await app.call('/workload', { token });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 'ERR_TOKEN_KEY_NOT_FOUND' });
    agent.setJwtBundles({ 'spiffe://shield.local': await agent.jwks() });
  });

  it('logs none of the tokens', () => {
    const all = logger.lines.join('\n');
    for (const token of tokens) expect(all).not.toContain(token.split('.')[2]?.slice(0, 16));
  });
});
