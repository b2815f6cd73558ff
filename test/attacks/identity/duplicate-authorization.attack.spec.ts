/**
 * Attack: two `Authorization` headers in one request (a parser differential).
 *
 * `extractBearerToken` refuses several Authorization headers ("which one would be 'the'
 * credential is ambiguous"), and the passport extractor does the same. But Node's HTTP parser
 * never hands them over: for `authorization` it keeps the FIRST header and silently drops the
 * others (`req.headers.authorization` is a string; only `req.rawHeaders` has both). So the refusal
 * is dead code and the request is authenticated with the first credential.
 *
 * Why it matters: a proxy, WAF or logging tier in front that reads the LAST header (or joins
 * them) sees another caller than the service authorizes. An attacker who can append a header (a
 * client library, a misconfigured proxy adding its own credential) decides which one counts.
 * RFC 7230 §3.2.2: a sender MUST NOT send several fields of a name that is not a list; a
 * recipient facing an ambiguity it cannot resolve must refuse it, not guess.
 *
 * Real HTTPS on loopback, dev PKI, inline issuer key; both the Shield guard and the passport path.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, Get, Module } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { IdentityModule, Principal, RequireScopes, type ShieldPrincipal } from '@inference-shield/identity';
import { ShieldPassportModule, UsePassport } from '@inference-shield/identity/passport';
import { AUDIENCE, callOnce, ISSUER, issuerKey, serveOptionalMtls, type IssuerKey } from './attack-kit.js';
import { startApp, type TestApp } from '../../support/harness.js';

@Controller()
class ModelsController {
  @Get('guard')
  @RequireScopes('models:infer')
  guard(@Principal() caller: ShieldPrincipal): { subject: string } {
    return { subject: caller.subject };
  }

  @Get('passport')
  @UsePassport({ scopes: ['models:infer'] })
  passport(@Principal() caller: ShieldPrincipal): { subject: string } {
    return { subject: caller.subject };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'attack-dup-authz-'));
let pki: TestPki;
let key: IssuerKey;
let running: TestApp;
let alice: string;
let bob: string;

beforeAll(async () => {
  [pki, key] = await Promise.all([createTestPki(dir), issuerKey('k1')]);
  @Module({
    imports: [
      IdentityModule.forRoot({
        oidc: {
          issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [key.jwk] }, algorithms: ['ES256'] }],
        },
      }),
      ShieldPassportModule,
    ],
    controllers: [ModelsController],
  })
  class DuplicateAuthorizationApp {}
  running = await startApp(DuplicateAuthorizationApp, serveOptionalMtls(pki));
  [alice, bob] = await Promise.all([key.sign({ sub: 'alice' }), key.sign({ sub: 'bob' })]);
});

afterAll(async () => {
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, ...authorization: string[]) =>
  callOnce(running.port, pki, path, { headers: authorization.map((v) => `Authorization: ${v}`) });

describe.each(['/guard', '/passport'])('two Authorization headers on %s', (path) => {
  it('control: one header is read as usual (valid: 200 as its subject; garbage: 401)', async () => {
    const ok = await get(path, `Bearer ${alice}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ subject: 'alice' });
    expect((await get(path, 'Bearer not.a.token')).status).toBe(401);
  });

  it('a valid token followed by a broken one is refused, not authenticated as the first', async () => {
    const r = await get(path, `Bearer ${alice}`, 'Bearer not.a.token');
    expect(r.status).toBe(401);
    expect(r.body['code']).toBe('ERR_TOKEN_MALFORMED');
  });

  it('two valid tokens of different callers are refused: the service must not pick one', async () => {
    const r = await get(path, `Bearer ${alice}`, `Bearer ${bob}`);
    expect(r.status).toBe(401);
    expect(r.body['code']).toBe('ERR_TOKEN_MALFORMED');
    expect(r.text).not.toContain('alice');
  });

  it('a broken token followed by a valid one is refused (holds today)', async () => {
    const r = await get(path, 'Bearer not.a.token', `Bearer ${alice}`);
    expect(r.status).toBe(401);
  });
});
