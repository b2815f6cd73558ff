import { Agent, request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Get, Module, Req } from '@nestjs/common';
import {
  Allow,
  AllowSpiffe,
  Authenticated,
  IdentityModule,
  mtls,
  oidc,
  Principal,
  Public,
  RequireBoundToken,
  RequireClaims,
  RequireRoles,
  RequireScopes,
  type AuditEvent,
  type AuditSink,
  type ShieldPrincipal,
  type TokenVerifier,
} from '@inference-shield/identity';
import { certificateThumbprint, TOKEN_VERIFIER } from '@inference-shield/identity/internal';
import {
  createSigner,
  ISSUER,
  oidcOptions,
  type Signer,
} from '../../libs/identity/test/identity.fixtures.js';
import { startApp, type AppCallOptions, type TestApp } from '../support/harness.js';
import { createPki, optionalMtls, GW_ID, OTHER_ID, type Pki } from './support/workload-pki.js';

let pki: Pki;
let signer: Signer;
let running: TestApp;
const events: AuditEvent[] = [];
const sink: AuditSink = { record: (e) => events.push(e) };

const echo = (p: ShieldPrincipal | undefined) => ({ principal: p, frozen: p ? Object.isFrozen(p) : null });

@Controller('t')
class TestController {
  @Get('public') @Public() pub(@Principal() p: ShieldPrincipal | undefined) {
    return { ok: true, principal: p ?? null };
  }
  @Get('user-public') @Public() userPublic(@Req() req: { user?: unknown }) {
    return { own: Object.hasOwn(req, 'user'), user: req.user ?? null };
  }
  @Get('user') @Authenticated() user(
    @Req() req: { user?: ShieldPrincipal },
    @Principal() p: ShieldPrincipal,
  ) {
    return { own: Object.hasOwn(req, 'user'), same: req.user === p, subject: req.user?.subject ?? null };
  }
  @Get('any') @Authenticated() any(@Principal() p: ShieldPrincipal) {
    return echo(p);
  }
  @Get('infer') @RequireScopes('models:infer') infer(@Principal() p: ShieldPrincipal) {
    return echo(p);
  }
  @Get('admin') @RequireScopes('models:infer', 'models:admin') admin() {
    return { ok: true };
  }
  @Get('either')
  @Allow(oidc({ scopes: ['models:infer'] }), mtls({ spiffeIds: [GW_ID] }))
  either(@Principal() p: ShieldPrincipal) {
    return echo(p);
  }
  @Get('spiffe') @AllowSpiffe(GW_ID) spiffe(@Principal() p: ShieldPrincipal) {
    return echo(p);
  }
  @Get('domain') @AllowSpiffe('spiffe://shield.local') domain(@Principal() p: ShieldPrincipal) {
    return echo(p);
  }
  @Get('bound') @RequireScopes('models:infer') @RequireBoundToken() bound(@Principal() p: ShieldPrincipal) {
    return echo(p);
  }
  @Get('roles') @RequireRoles('ops') roles() {
    return { ok: true };
  }
  @Get('claims') @RequireClaims({ tenant: 'acme' }) claims() {
    return { ok: true };
  }
  @Get('mutate') @Authenticated() mutate(@Principal() p: ShieldPrincipal) {
    let threw = false;
    try {
      (p as { subject: string }).subject = 'admin';
    } catch {
      threw = true;
    }
    return { threw, subject: p.subject };
  }
}

@Controller('cls')
@RequireScopes('cls:read')
class ClassPolicyController {
  @Get('a') a() {
    return { ok: 'a' };
  }
  @Get('b') @Public() b() {
    return { ok: 'b' };
  }
}

// The same inherited handler under two controllers with different class policies: a policy cache
// keyed by the handler alone would let the first one compiled decide for both.
class BaseModels {
  @Get() list() {
    return { ok: true };
  }
}
@Controller('open-models')
@Public()
class OpenModels extends BaseModels {}
@Controller('closed-models')
@RequireScopes('models:list')
class ClosedModels extends BaseModels {}

let appModule: new () => unknown;

beforeAll(async () => {
  pki = await createPki();
  signer = await createSigner();
  @Module({
    imports: [
      IdentityModule.forRoot({
        oidc: oidcOptions(signer),
        mtls: { trustDomains: ['shield.local'] },
        audit: { sink },
        roleClaimPath: 'realm_access.roles',
      }),
    ],
    controllers: [TestController, ClassPolicyController, OpenModels, ClosedModels],
  })
  class AppModule {}
  appModule = AppModule;
  running = await startApp(appModule, optionalMtls(pki));
});

afterAll(async () => {
  await running?.close();
});

const get = (path: string, opts: AppCallOptions = {}) => running.call(path, opts);

describe('IdentityGuard over real HTTPS (Express)', () => {
  it('lets anyone reach a @Public() route, without a principal', async () => {
    const r = await get('/t/public');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ok: true, principal: null });
  });

  it('refuses a protected route without credentials: 401, bare Bearer challenge', async () => {
    const r = await get('/t/infer');
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('ERR_TOKEN_MISSING');
    expect(r.headers['www-authenticate']).toBe('Bearer');
  });

  it('accepts a valid token with the scope and hands the handler a frozen principal', async () => {
    const token = signer.sign({ sub: 'alice', jti: 'id-1' });
    const r = await get('/t/infer', { token });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      principal: {
        method: 'oidc',
        subject: 'alice',
        issuer: ISSUER,
        scopes: ['models:infer'],
        claims: expect.objectContaining({ sub: 'alice', iss: ISSUER }),
        tokenId: 'id-1',
      },
      frozen: true,
    });
    const m = await get('/t/mutate', { token });
    expect(m.body).toEqual({ threw: true, subject: 'alice' });
  });

  it('answers a missing scope with 403 insufficient_scope naming the scopes needed (RFC 6750 §3.1)', async () => {
    const r = await get('/t/admin', { token: signer.sign() });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'ERR_INSUFFICIENT_SCOPE', scope: 'models:infer models:admin' });
    expect(r.headers['www-authenticate']).toBe(
      'Bearer error="insufficient_scope", scope="models:infer models:admin"',
    );
  });

  it('answers an invalid token with 401 invalid_token and never echoes it', async () => {
    const token = signer.sign({ exp: Math.floor(Date.now() / 1000) - 3600 });
    const r = await get('/t/infer', { token });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe('ERR_TOKEN_EXPIRED');
    expect(r.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(r.text).not.toContain(token.split('.')[1]);
  });

  it('never reads a token from the query string or a cookie (RFC 6750 §2.1 only)', async () => {
    const token = signer.sign();
    const q = await get(`/t/infer?access_token=${token}`);
    expect([q.status, q.body.code]).toEqual([401, 'ERR_TOKEN_MISSING']);
    const c = await get('/t/infer', { headers: { cookie: `access_token=${token}; token=${token}` } });
    expect([c.status, c.body.code]).toEqual([401, 'ERR_TOKEN_MISSING']);
  });

  it('sets req.user to the principal for passport-style code, and leaves it undefined on public routes', async () => {
    // IdentityModule gives each Express request an own `user` (undefined) before Express swaps its
    // prototype, so the guard overwrites the property instead of reshaping the request.
    expect((await get('/t/user-public')).body).toEqual({ own: true, user: null });
    const r = await get('/t/user', { token: signer.sign({ sub: 'req-user' }) });
    expect(r.body).toEqual({ own: true, same: true, subject: 'req-user' });
  });

  it('treats another Authorization scheme as no bearer token', async () => {
    const r = await get('/t/infer', { authorization: 'Basic YWxpY2U6cGFzcw==' });
    expect([r.status, r.body.code]).toEqual([401, 'ERR_TOKEN_MISSING']);
    const m = await get('/t/either', { authorization: 'Basic YWxpY2U6cGFzcw==', client: pki.gw });
    expect(m.status).toBe(200);
  });

  it('builds an mTLS principal from the verified peer certificate', async () => {
    const r = await get('/t/any', { client: pki.gw });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      principal: {
        method: 'mtls',
        subject: GW_ID,
        issuer: expect.stringContaining('CN='),
        scopes: [],
        claims: {},
        spiffeId: GW_ID,
        certificateFingerprint: pki.gw.fingerprint256,
      },
      frozen: true,
    });
  });

  it('allow-lists by SPIFFE ID', async () => {
    expect((await get('/t/spiffe', { client: pki.gw })).status).toBe(200);
    const r = await get('/t/spiffe', { client: pki.other });
    expect([r.status, r.body.code]).toEqual([403, 'ERR_CALLER_NOT_ALLOWED']);
  });

  it('allow-lists by trust domain', async () => {
    const r = await get('/t/domain', { client: pki.other });
    expect(r.status).toBe(200);
    expect((r.body.principal as ShieldPrincipal).spiffeId).toBe(OTHER_ID);
  });

  it('refuses a certificate outside the module trust domains, or without a SPIFFE ID', async () => {
    for (const client of [pki.partner, pki.plain]) {
      const r = await get('/t/any', { client });
      expect([r.status, r.body.code]).toEqual([401, 'ERR_CLIENT_CERT_INVALID']);
    }
  });

  it('never uses a certificate the TLS layer did not verify (another CA)', async () => {
    const r = await get('/t/spiffe', { client: pki.foreign });
    expect([r.status, r.body.code]).toEqual([401, 'ERR_CLIENT_CERT_INVALID']);
  });

  it('ignores an X-Client-Cert header carrying a valid certificate', async () => {
    const headers = {
      'x-client-cert': encodeURIComponent(pki.gw.certPem),
      'x-forwarded-client-cert': `Hash=${pki.gw.fingerprint256};URI=${GW_ID}`,
      'x-ssl-client-verify': 'SUCCESS',
    };
    const r = await get('/t/spiffe', { headers });
    expect([r.status, r.body.code]).toEqual([401, 'ERR_CLIENT_CERT_MISSING']);
    expect(r.headers['www-authenticate']).toBe('Bearer');
  });

  it('on an OIDC-or-mTLS route, takes whichever credential passes', async () => {
    const byToken = await get('/t/either', { token: signer.sign() });
    expect((byToken.body.principal as ShieldPrincipal).method).toBe('oidc');
    const byCert = await get('/t/either', { client: pki.gw });
    expect((byCert.body.principal as ShieldPrincipal).method).toBe('mtls');
    // A valid token without the scope, from an allow-listed workload: the mTLS alternative passes.
    const both = await get('/t/either', { client: pki.gw, token: signer.sign({ scope: 'other' }) });
    expect((both.body.principal as ShieldPrincipal).method).toBe('mtls');
    // Neither passes: the token's failure is reported.
    const neither = await get('/t/either', { client: pki.other, token: signer.sign({ scope: 'other' }) });
    expect([neither.status, neither.body.code]).toEqual([403, 'ERR_INSUFFICIENT_SCOPE']);
  });

  it('never ignores a bad token, even when the certificate alone would pass', async () => {
    const r = await get('/t/either', { client: pki.gw, token: signer.sign({ aud: 'someone-else' }) });
    expect([r.status, r.body.code]).toEqual([401, 'ERR_TOKEN_AUDIENCE_INVALID']);
  });

  it('accepts a certificate-bound token on the connection of its certificate (RFC 8705)', async () => {
    const token = signer.sign({
      cnf: { 'x5t#S256': certificateThumbprint(Buffer.from(pemBody(pki.gw.certPem), 'base64')) },
    });
    const r = await get('/t/bound', { client: pki.gw, token });
    expect(r.status).toBe(200);
    expect((r.body.principal as ShieldPrincipal).certificateFingerprint).toBe(pki.gw.fingerprint256);
  });

  it('refuses a bound token presented with another certificate or none', async () => {
    const token = signer.sign({
      cnf: { 'x5t#S256': certificateThumbprint(Buffer.from(pemBody(pki.gw.certPem), 'base64')) },
    });
    for (const client of [pki.other, undefined]) {
      const r = await get('/t/infer', client ? { client, token } : { token });
      expect([r.status, r.body.code]).toEqual([401, 'ERR_TOKEN_BINDING_MISMATCH']);
    }
  });

  it('refuses an unbound token on a @RequireBoundToken() route', async () => {
    const r = await get('/t/bound', { client: pki.gw, token: signer.sign() });
    expect([r.status, r.body.code]).toEqual([401, 'ERR_TOKEN_BINDING_REQUIRED']);
    expect(r.headers['www-authenticate']).toContain('invalid_token');
  });

  it('checks roles at the configured claim path and claims by value', async () => {
    const ops = signer.sign({ realm_access: { roles: ['ops'] }, tenant: 'acme' });
    const dev = signer.sign({ realm_access: { roles: ['dev'] }, roles: ['ops'], tenant: 'evil' });
    expect((await get('/t/roles', { token: ops })).status).toBe(200);
    expect((await get('/t/claims', { token: ops })).status).toBe(200);
    for (const path of ['/t/roles', '/t/claims']) {
      const r = await get(path, { token: dev });
      expect([r.status, r.body.code]).toEqual([403, 'ERR_CLAIMS_NOT_SATISFIED']);
    }
  });

  it('applies a class policy to its routes, and lets a handler override it', async () => {
    expect((await get('/cls/a', { token: signer.sign() })).status).toBe(403);
    expect((await get('/cls/a', { token: signer.sign({ scope: 'cls:read' }) })).status).toBe(200);
    expect((await get('/cls/b')).status).toBe(200);
  });

  it('keeps separate policies for one inherited handler under two controllers', async () => {
    expect((await get('/open-models')).status).toBe(200);
    expect((await get('/closed-models')).status).toBe(401);
    expect((await get('/closed-models', { token: signer.sign() })).status).toBe(403);
    expect((await get('/closed-models', { token: signer.sign({ scope: 'models:list' }) })).status).toBe(200);
  });

  it('records one audit event per decision: who and where, never the token', async () => {
    events.length = 0;
    const token = signer.sign({ sub: 'audit-alice' });
    await get('/t/infer', { token });
    await get('/t/admin', { token });
    await get('/t/spiffe', { client: pki.other });
    await get('/t/public');
    expect(events).toEqual([
      {
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        decision: 'allow',
        route: 'GET /t/infer',
        method: 'oidc',
        subject: 'audit-alice',
        issuer: ISSUER,
        scopes: ['models:infer'],
      },
      expect.objectContaining({
        decision: 'deny',
        route: 'GET /t/admin',
        subject: 'audit-alice',
        code: 'ERR_INSUFFICIENT_SCOPE',
      }),
      expect.objectContaining({
        decision: 'deny',
        route: 'GET /t/spiffe',
        method: 'mtls',
        spiffeId: OTHER_ID,
        code: 'ERR_CALLER_NOT_ALLOWED',
      }),
    ]);
    const text = JSON.stringify(events);
    expect(text).not.toContain(token.split('.')[1]);
    expect(text).not.toContain('jti');
  });
});

describe('IdentityGuard on a keep-alive connection (the per-connection memo)', () => {
  // One socket for every request of an agent: what a client (or a gateway's pool) reusing its
  // connection does. `reused` says the request went on an already open connection.
  const agents: Agent[] = [];
  afterAll(() => {
    for (const agent of agents) agent.destroy();
  });
  const keepAlive = (client?: Pki['gw']) => {
    const agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: pki.caPem,
      ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
    });
    agents.push(agent);
    return agent;
  };
  const on = (agent: Agent, path: string, authorization?: string | string[]) =>
    new Promise<{ status: number; body: Record<string, unknown>; reused: boolean }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: running.port,
          path,
          servername: 'localhost',
          agent,
          // Name/value pairs (an array sends one header line per value; Host is then ours to send).
          headers: [
            'Host',
            `127.0.0.1:${running.port}`,
            ...[authorization ?? []].flat().flatMap((value) => ['Authorization', value]),
          ],
          timeout: 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let body: Record<string, unknown> = {};
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
            } catch {
              // not JSON: the status says enough
            }
            resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end();
    });
  const verifier = () => running.app.get<TokenVerifier>(TOKEN_VERIFIER);
  const subjectOf = (r: { body: Record<string, unknown> }) => (r.body.principal as ShieldPrincipal).subject;

  it('answers a reused token from the memo, still per request (principal, audit event)', async () => {
    const agent = keepAlive();
    const alice = `Bearer ${signer.sign({ sub: 'memo-alice' })}`;
    const before = verifier().stats().connectionMemoHits;
    events.length = 0;
    const rs = [];
    for (let i = 0; i < 3; i++) rs.push(await on(agent, '/t/infer', alice));
    expect(rs.map((r) => [r.status, r.reused, subjectOf(r)])).toEqual([
      [200, false, 'memo-alice'],
      [200, true, 'memo-alice'],
      [200, true, 'memo-alice'],
    ]);
    expect(verifier().stats().connectionMemoHits - before).toBe(2);
    expect(events.map((e) => [e.decision, e.subject])).toEqual(Array(3).fill(['allow', 'memo-alice']));
    // The memo skips the credential's verification, not the route's policy.
    const admin = await on(agent, '/t/admin', alice);
    expect([admin.status, admin.body.code, admin.reused]).toEqual([403, 'ERR_INSUFFICIENT_SCOPE', true]);
    // Nor the refusal of a repeated Authorization header, even when the first one is remembered.
    const bob = `Bearer ${signer.sign({ sub: 'memo-bob' })}`;
    for (const repeated of [
      [alice, alice],
      [alice, bob],
    ]) {
      const r = await on(agent, '/t/infer', repeated);
      expect([r.status, r.body.code, r.reused]).toEqual([401, 'ERR_TOKEN_MALFORMED', true]);
    }
    expect((await on(agent, '/t/infer', alice)).status).toBe(200);
  });

  it('gives each client of a shared connection its own principal (a gateway pool)', async () => {
    const agent = keepAlive();
    const alice = `Bearer ${signer.sign({ sub: 'pool-alice' })}`;
    const bob = `Bearer ${signer.sign({ sub: 'pool-bob' })}`;
    const expired = `Bearer ${signer.sign({ sub: 'pool-eve', exp: Math.floor(Date.now() / 1000) - 3600 })}`;
    const seen = [];
    for (const h of [alice, bob, alice, alice, expired, bob, undefined, bob]) {
      const r = await on(agent, '/t/infer', h);
      seen.push(r.status === 200 ? subjectOf(r) : r.body.code);
    }
    expect(seen).toEqual([
      'pool-alice',
      'pool-bob',
      'pool-alice',
      'pool-alice',
      'ERR_TOKEN_EXPIRED',
      'pool-bob',
      'ERR_TOKEN_MISSING',
      'pool-bob',
    ]);
  });

  it('re-checks a bound token against the connection certificate (RFC 8705) on every request', async () => {
    const bound = `Bearer ${signer.sign({
      sub: 'memo-bound',
      cnf: { 'x5t#S256': certificateThumbprint(Buffer.from(pemBody(pki.gw.certPem), 'base64')) },
    })}`;
    const gw = keepAlive(pki.gw);
    const before = verifier().stats().connectionMemoHits;
    for (let i = 0; i < 2; i++) expect((await on(gw, '/t/bound', bound)).status).toBe(200);
    expect(verifier().stats().connectionMemoHits - before).toBe(1);
    // The same bytes on another workload's connection, or on one without a certificate.
    for (const agent of [keepAlive(pki.other), keepAlive()]) {
      for (let i = 0; i < 2; i++) {
        const r = await on(agent, '/t/bound', bound);
        expect([r.status, r.body.code]).toEqual([401, 'ERR_TOKEN_BINDING_MISMATCH']);
      }
    }
  });
});

function pemBody(pem: string): string {
  return pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
}
