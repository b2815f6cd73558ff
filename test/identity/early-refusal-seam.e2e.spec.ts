/**
 * Where identity's per-request work sits. Under `createHttpsApp` the request shaping and the
 * header-only refusal (issue #13, 1b) are hooks on the bootstrap's one seam, after the request
 * gate; in a plain Nest app (no seam) the same refusal wraps Express's own entry. Both paths are
 * checked on a real TLS socket: a guarded route with a large announced body and no token gets its
 * 401 while the client still holds the body.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Body, Controller, HttpCode, Module, Post, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { requestHooksOf } from '@inference-shield/https/internal';
import { IdentityModule, Public, RequireScopes } from '@inference-shield/identity';
import { rawExchange } from './support/raw-tls.js';
import { forgeWithFreshKey, type TokenForge } from './support/token-forge.js';

const ISSUER = 'https://idp.seam.test';
const AUDIENCE = 'inference';
const root = mkdtempSync(join(tmpdir(), 'identity-seam-'));
let pki: TestPki;
let forge: TokenForge;

@Controller()
class InferController {
  // Declared before the guarded `items/:id`, so Express serves it for `items/import`.
  @Post('items/import')
  @HttpCode(200)
  @Public()
  importItems(@Body() body: unknown): unknown {
    return { imported: body };
  }

  @Post('items/:id')
  @HttpCode(200)
  @RequireScopes('models:infer')
  updateItem(@Body() body: unknown): unknown {
    return { updated: body };
  }

  @Post('infer')
  @HttpCode(200)
  @RequireScopes('models:infer')
  infer(@Body() body: unknown): unknown {
    return { got: body };
  }
}

function appModule(): new () => object {
  @Module({
    imports: [
      IdentityModule.forRoot({
        oidc: {
          issuers: [
            { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [forge.publicJwk] }, algorithms: ['ES256'] },
          ],
        },
      }),
    ],
    controllers: [InferController],
  })
  class SeamModule {}
  return SeamModule;
}

const HOLDS_BODY =
  'POST /infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 400000\r\n\r\n{';

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  forge = await forgeWithFreshKey({ issuer: ISSUER, audience: AUDIENCE, subject: 'demo' });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('under createHttpsApp (Express)', () => {
  let app: HttpsApp;
  let port: number;
  beforeAll(async () => {
    app = await createHttpsApp(appModule(), {
      tls: { cert: pki.server.cert, key: pki.server.key },
      reload: { watch: false, sighup: false },
      nest: { logger: false },
    });
    port = (await app.listen(0, '127.0.0.1')).port;
  });
  afterAll(() => app?.close());

  it("identity's request work is on the bootstrap's seam, in order", () => {
    expect(requestHooksOf(app.app.getHttpServer())?.names()).toEqual([
      'identity:request-shape',
      'identity:early-refusal',
    ]);
  });

  it('a large body without a token is refused on its headers, behind the request gate', async () => {
    const r = await rawExchange(port, { ca: pki.ca.certPem }, HOLDS_BODY);
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'ERR_TOKEN_MISSING' });
    // The request gate ran first: its security headers are on the early answer.
    expect(r.headers['strict-transport-security']).toBeDefined();
  });

  it('a public route that a guarded pattern also matches is not refused early', async () => {
    const r = await rawExchange(
      port,
      { ca: pki.ca.certPem },
      'POST /items/import HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ imported: {} });
  });
});

describe('in a plain Nest app (no seam)', () => {
  let app: INestApplication;
  let port: number;
  beforeAll(async () => {
    app = await NestFactory.create(appModule(), {
      logger: false,
      httpsOptions: { cert: pki.server.certPem, key: pki.server.keyPem },
    });
    await app.listen(0, '127.0.0.1');
    port = (app.getHttpServer().address() as { port: number }).port;
  });
  afterAll(() => app?.close());

  it('there is no seam to use', () => {
    expect(requestHooksOf(app.getHttpServer())).toBeUndefined();
  });

  it('a large body without a token is still refused on its headers', async () => {
    const r = await rawExchange(port, { ca: pki.ca.certPem }, HOLDS_BODY);
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'ERR_TOKEN_MISSING' });
  });
});
