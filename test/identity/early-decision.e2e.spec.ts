/**
 * A guarded request with a body is decided once (issue #18): the header-only check (issue #13,
 * 1b) decides it before the body is read, and the guard uses that allow instead of deciding
 * again, for the same route policy and the same `Authorization` header only. Real TLS, the real
 * bootstrap, Express and Fastify. The verifier's connection memo counts the decisions: with a
 * token reused on one keep-alive connection, each decision after the first is one memo hit.
 */
import 'reflect-metadata';
import { Agent } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Body,
  Controller,
  Get,
  HttpCode,
  Injectable,
  Module,
  Post,
  type MiddlewareConsumer,
  type NestMiddleware,
  type NestModule,
} from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { IdentityModule, RequireScopes, type AuditEvent } from '@inference-shield/identity';
import { TOKEN_VERIFIER } from '@inference-shield/identity/internal';
import type { TokenVerifier } from '@inference-shield/identity';
import { startApp, type TestApp } from '../support/harness.js';
import { rawExchange } from './support/raw-tls.js';
import { forgeWithFreshKey, type TokenForge } from './support/token-forge.js';

const ISSUER = 'https://idp.early-decision.test';
const AUDIENCE = 'inference';
const root = mkdtempSync(join(tmpdir(), 'identity-early-decision-'));
let pki: TestPki;
let forge: TokenForge;
let other: TokenForge;

@Controller()
class InferController {
  @Post('infer')
  @HttpCode(200)
  @RequireScopes('models:infer')
  infer(@Body() body: unknown): unknown {
    return { got: body };
  }

  @Get('status')
  @RequireScopes('models:infer')
  status(): unknown {
    return { ok: true };
  }
}

/** A host middleware that runs after the header-only check and before the guard. */
@Injectable()
class SwapAuthorization implements NestMiddleware {
  use(req: { headers: Record<string, string | undefined> }, _res: unknown, next: () => void): void {
    const replacement = req.headers['x-replace-authorization'];
    if (replacement !== undefined) req.headers['authorization'] = replacement;
    next();
  }
}

function appModule(events: AuditEvent[]): new () => object {
  @Module({
    imports: [
      IdentityModule.forRoot({
        audit: { sink: { record: (event) => events.push(event) } },
        oidc: {
          issuers: [
            {
              issuer: ISSUER,
              audience: AUDIENCE,
              jwks: { keys: [forge.publicJwk, other.publicJwk] },
              algorithms: ['ES256'],
            },
          ],
        },
      }),
    ],
    controllers: [InferController],
  })
  class EarlyDecisionModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      consumer.apply(SwapAuthorization).forRoutes('*');
    }
  }
  return EarlyDecisionModule;
}

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  forge = await forgeWithFreshKey({ issuer: ISSUER, audience: AUDIENCE, subject: 'demo' });
  other = await forgeWithFreshKey({ issuer: ISSUER, audience: AUDIENCE, subject: 'someone-else' });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each(['express', 'fastify'] as const)('on %s', (adapter) => {
  let t: TestApp;
  let token: string;
  const events: AuditEvent[] = [];
  const memoHits = (): number => t.app.get<TokenVerifier>(TOKEN_VERIFIER).stats().connectionMemoHits;

  beforeAll(async () => {
    t = await startApp(appModule(events), { pki, adapter });
    token = await forge.sign({ scope: 'models:infer' });
  });
  afterAll(() => t?.close());

  it('decides a request with a body once: the guard uses the header-only check', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = memoHits();
      const recorded = events.length;
      const n = 5;
      for (let i = 0; i < n; i++) {
        const r = await t.call('/infer', { token, json: { i }, agent });
        expect(r.status).toBe(200);
        expect(r.body).toEqual({ got: { i } });
      }
      // The first request verifies (no memo yet); each later one is one memo hit, not two.
      expect(memoHits() - before).toBe(n - 1);
      // Still one audit event per request, recorded by the guard.
      expect(events.slice(recorded).map((e) => `${e.decision} ${e.route} ${e.subject}`)).toEqual(
        Array.from({ length: n }, () => 'allow POST /infer demo'),
      );
    } finally {
      agent.destroy();
    }
  });

  it('still decides a request without a body in the guard, every time', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = memoHits();
      for (let i = 0; i < 3; i++) expect((await t.call('/status', { token, agent })).status).toBe(200);
      expect(memoHits() - before).toBe(2);
    } finally {
      agent.destroy();
    }
  });

  it('decides again when the body took longer than the early decision may stand', async () => {
    const body = '{"slow":true}';
    const head =
      `POST /infer HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    // On a new connection the check verifies (a cache hit, no memo yet) and remembers the token for
    // the connection; a guard that decides again finds it there: one memo hit.
    const fast = memoHits();
    const quick = await rawExchange(t.port, { ca: t.ca }, head + body);
    expect(quick.status).toBe(200);
    expect(memoHits() - fast).toBe(0);

    const slow = memoHits();
    const late = await rawExchange(t.port, { ca: t.ca }, head, (socket) => {
      // More than the 1 s an early decision stands (EARLY_DECISION_MAX_AGE_MS).
      setTimeout(() => socket.write(body), 1_300);
    });
    expect(late.status).toBe(200);
    expect(late.body).toBe('{"got":{"slow":true}}');
    expect(memoHits() - slow).toBe(1);
  });

  it('decides again when a middleware replaced the Authorization header after the check', async () => {
    // The header-only check allows the valid token; the middleware then swaps in a broken one,
    // which the guard must judge, not the earlier allow. (On Fastify, Nest's middleware runs in an
    // onRequest hook before the check, which then already sees the replaced header: the same
    // answers, for a different reason. On Express it runs between the two.)
    const refused = await t.call('/infer', {
      token,
      json: { x: 1 },
      headers: { 'x-replace-authorization': 'Bearer not.a.token' },
    });
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ code: 'ERR_TOKEN_MALFORMED' });

    // Swapped for another valid token: the principal is the second token's, decided by the guard.
    const swapped = await t.call('/infer', {
      token,
      json: { x: 2 },
      headers: { 'x-replace-authorization': `Bearer ${await other.sign({ scope: 'models:infer' })}` },
    });
    expect(swapped.status).toBe(200);
    const wrongScope = await t.call('/infer', {
      token,
      json: { x: 3 },
      headers: { 'x-replace-authorization': `Bearer ${await other.sign({ scope: 'models:read' })}` },
    });
    expect(wrongScope.status).toBe(403);
  });
});
