/**
 * Inference Shield inside a host application (issue #11 §4, issue #13 1b and 2), over real TLS
 * with `createHttpsApp` and `IdentityModule`, on Express and Fastify:
 *
 * - the host's own errors (`ConflictException`, an unknown `Error`, an error its global filter
 *   handles, a controller filter) answer exactly as in the same app without Shield; Shield's
 *   refusals stay coded; `redactUnknownErrors` is an opt-in;
 * - policies given in the options for routes that carry no decorator (by path, by controller);
 * - `user.resolve` maps the principal to the host's user, seen by the host's guard and
 *   interceptor, while `@Principal()` keeps the Shield principal;
 * - a request with a body and no or a bad credential is refused on its headers alone;
 * - with optional mTLS, a client certificate that failed verification is refused even with a
 *   valid token.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Body,
  Catch,
  ConflictException,
  Controller,
  ForbiddenException,
  Get,
  HttpCode,
  Injectable,
  Module,
  Post,
  Req,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type NestInterceptor,
  type Type,
} from '@nestjs/common';
import { APP_FILTER, HttpAdapterHost } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import type { HttpsApp } from '@inference-shield/https';
import {
  Authenticated,
  IdentityModule,
  Principal,
  Public,
  RequireScopes,
  type IdentityModuleOptions,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import {
  call,
  CaptureLogger,
  startApp,
  type AppCallOptions,
  type CallResult,
  type ClientCertificate,
} from '../support/harness.js';
import { rawExchange } from './support/raw-tls.js';
import { forgeWithFreshKey, type TokenForge } from './support/token-forge.js';

const ISSUER = 'https://idp.guest.test';
const AUDIENCE = 'inference';
const root = mkdtempSync(join(tmpdir(), 'identity-guest-'));
const SECRET = 'postgres://admin:hunter2@db.internal';

/** An error of the host, answered by the host's own global filter. */
class QuotaError extends Error {}

@Catch(QuotaError)
class QuotaFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}
  catch(_err: QuotaError, host: ArgumentsHost): void {
    const adapter = this.adapterHost.httpAdapter;
    const res = host.switchToHttp().getResponse<unknown>();
    adapter.setHeader(res, 'X-Quota', 'exceeded');
    adapter.reply(res, { quota: 'exceeded' }, 429);
  }
}

/** The host's controller-level filter. */
@Catch(ForbiddenException)
class ForbiddenFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}
  catch(_err: ForbiddenException, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<unknown>();
    this.adapterHost.httpAdapter.reply(res, { handledBy: 'ForbiddenFilter' }, 403);
  }
}

interface HostUser {
  readonly id: string;
}
const seenByHostGuard: unknown[] = [];

/** The host's own guard, after Shield's global one: it reads `req.user`. */
@Injectable()
class HostUserGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const user = context.switchToHttp().getRequest<{ user?: unknown }>().user;
    seenByHostGuard.push(user);
    return true;
  }
}

/** The host's own interceptor: it reads `req.user` too. */
@Injectable()
class HostUserInterceptor implements NestInterceptor {
  constructor(private readonly adapterHost: HttpAdapterHost) {}
  intercept(context: ExecutionContext, next: CallHandler) {
    const http = context.switchToHttp();
    const user = http.getRequest<{ user?: HostUser }>().user;
    this.adapterHost.httpAdapter.setHeader(http.getResponse<unknown>(), 'X-Host-User', user?.id ?? 'none');
    return next.handle();
  }
}

@Controller('host')
@UseFilters(ForbiddenFilter)
class HostController {
  @Post('load')
  @Authenticated()
  load(): never {
    throw new ConflictException('model already loaded');
  }

  @Get('boom')
  @Public()
  boom(): never {
    throw new Error(`cannot reach ${SECRET}`);
  }

  @Get('quota')
  @Public()
  quota(): never {
    throw new QuotaError('over');
  }

  @Get('forbidden')
  @Public()
  forbidden(): never {
    throw new ForbiddenException('nope');
  }

  @Post('infer')
  @HttpCode(200)
  @RequireScopes('models:infer')
  @UseGuards(HostUserGuard)
  @UseInterceptors(HostUserInterceptor)
  infer(
    @Body() body: Record<string, unknown>,
    @Principal() caller: ShieldPrincipal,
    @Req() req: { user?: unknown },
  ): Record<string, unknown> {
    return {
      subject: caller.subject,
      method: caller.method,
      user: req.user ?? null,
      keys: Object.keys(body),
    };
  }
}

/** A vendored controller: no decorator of ours, covered by `routePolicies`. */
@Controller('vendor')
class VendorController {
  @Get('status')
  status(): { ok: boolean } {
    return { ok: true };
  }
}

/** A health controller the host cannot decorate either, opened by path. */
@Controller('health')
class HealthController {
  @Get()
  health(): { status: string } {
    return { status: 'ok' };
  }
  @Get('live')
  live(): { live: boolean } {
    return { live: true };
  }
}

function hostModule(identity: IdentityModuleOptions | undefined): Type {
  @Module({
    imports: identity ? [IdentityModule.forRoot(identity)] : [],
    controllers: [HostController, VendorController, HealthController],
    providers: [{ provide: APP_FILTER, useClass: QuotaFilter }, HostUserGuard, HostUserInterceptor],
  })
  class HostModule {}
  return HostModule;
}

let pki: TestPki;
let forge: TokenForge;

function identityOptions(extra: Partial<IdentityModuleOptions> = {}): IdentityModuleOptions {
  return {
    oidc: {
      issuers: [
        { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [forge.publicJwk] }, algorithms: ['ES256'] },
      ],
    },
    mtls: { trustDomains: ['shield.local'] },
    routePolicies: [
      { method: 'GET', path: '/health/*', policy: Public() },
      { controller: VendorController, policy: RequireScopes('vendor:use') },
    ],
    user: {
      resolve: async (principal: ShieldPrincipal): Promise<HostUser | null> => {
        await Promise.resolve();
        if (principal.subject === 'nobody') return null;
        if (principal.subject === 'crash') throw new Error(`lookup failed for ${SECRET}`);
        return { id: `u-${principal.subject}` };
      },
    },
    ...extra,
  };
}

async function start(
  module: Type,
  adapter: 'express' | 'fastify',
  logger: CaptureLogger | false = false,
): Promise<{ app: HttpsApp; port: number }> {
  const t = await startApp(module, {
    pki,
    mtls: { mode: 'optional', ca: { file: pki.ca.cert }, crl: pki.ca.crl },
    logger,
    adapter,
  });
  return { app: t.https, port: t.port };
}

/** What a client sees of a response, without what changes from one response to the next. */
function visible(r: CallResult): { status: number; body: string; headers: Record<string, unknown> } {
  const { date: _date, 'keep-alive': _k, connection: _c, ...headers } = r.headers;
  return { status: r.status, body: r.text, headers };
}

const apps: HttpsApp[] = [];

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  forge = await forgeWithFreshKey({ issuer: ISSUER, audience: AUDIENCE, subject: 'demo' });
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  rmSync(root, { recursive: true, force: true });
});

describe.each(['express', 'fastify'] as const)('on %s', (adapter) => {
  let shielded: number;
  let plain: number;
  let redacting: number;
  // Nest's Logger is process-wide (the last app created sets it): one capture for all three apps,
  // read from a mark taken before each request.
  const logger = new CaptureLogger();
  const linesSince = (mark: number): string => logger.lines.slice(mark).join('\n');
  const get = (port: number, path: string, extra: AppCallOptions = {}) =>
    call(port, { ca: pki.ca.certPem, path, ...extra });

  beforeAll(async () => {
    const a = await start(hostModule(identityOptions()), adapter, logger);
    const b = await start(hostModule(undefined), adapter, logger);
    const c = await start(hostModule(identityOptions({ redactUnknownErrors: true })), adapter, logger);
    apps.push(a.app, b.app, c.app);
    shielded = a.port;
    plain = b.port;
    redacting = c.port;
  });

  describe("the host's errors are the host's (issue #11 §4)", () => {
    it('a ConflictException stays 409 with its message, as without Shield', async () => {
      const token = await forge.sign();
      const withShield = await get(shielded, '/host/load', { method: 'POST', token });
      const without = await get(plain, '/host/load', { method: 'POST' });
      expect(withShield.status).toBe(409);
      expect(withShield.body).toEqual({
        message: 'model already loaded',
        error: 'Conflict',
        statusCode: 409,
      });
      expect(visible(withShield)).toEqual(visible(without));
    });

    it.each([
      ['an unknown Error gets Nest default 500 body', '/host/boom', 500],
      ["an error of the host's global filter still goes to it", '/host/quota', 429],
      ['a controller filter of the host still runs', '/host/forbidden', 403],
      ['an unknown route keeps Nest default 404', '/nowhere', 404],
    ])('%s', async (_name, path, status) => {
      const withShield = await get(shielded, path);
      const without = await get(plain, path);
      expect(withShield.status).toBe(status);
      expect(visible(withShield)).toEqual(visible(without));
      expect(withShield.text).not.toContain('hunter2');
    });

    it("Shield's own refusals stay coded, with their challenge", async () => {
      const r = await get(shielded, '/host/load', { method: 'POST' });
      expect(r.status).toBe(401);
      expect(r.body).toEqual({
        code: 'ERR_TOKEN_MISSING',
        message: 'An access token is required in the Authorization header.',
      });
      expect(r.headers['www-authenticate']).toBe('Bearer');
    });

    it('redactUnknownErrors: an unknown Error becomes 500 ERR_INTERNAL, logged by name only', async () => {
      const mark = logger.lines.length;
      const r = await get(redacting, '/host/boom');
      expect(r.status).toBe(500);
      expect(r.body).toEqual({ code: 'ERR_INTERNAL', message: 'Internal error.' });
      expect(linesSince(mark)).toContain('unhandled Error');
      expect(linesSince(mark)).not.toContain('hunter2');
    });

    it("redactUnknownErrors leaves the host's HttpExceptions and filters alone", async () => {
      const token = await forge.sign();
      const conflict = await get(redacting, '/host/load', { method: 'POST', token });
      expect(conflict.status).toBe(409);
      expect(conflict.body).toEqual({ message: 'model already loaded', error: 'Conflict', statusCode: 409 });
      expect((await get(redacting, '/host/forbidden')).body).toEqual({ handledBy: 'ForbiddenFilter' });
    });
  });

  describe('policies from the options (routes without decorators)', () => {
    it('by path: GET /health/* is public', async () => {
      expect((await get(shielded, '/health')).status).toBe(200);
      expect((await get(shielded, '/health/live')).body).toEqual({ live: true });
    });

    it('by controller: the vendored controller needs vendor:use', async () => {
      expect((await get(shielded, '/vendor/status')).status).toBe(401);
      const wrong = await get(shielded, '/vendor/status', { token: await forge.sign() });
      expect({ status: wrong.status, code: wrong.body['code'] }).toEqual({
        status: 403,
        code: 'ERR_INSUFFICIENT_SCOPE',
      });
      const right = await get(shielded, '/vendor/status', {
        token: await forge.sign({ scope: 'vendor:use' }),
      });
      expect(right.status).toBe(200);
    });
  });

  describe('user.resolve (the principal mapped to the host user)', () => {
    it("lands on req.user, before the host's guard and interceptor; @Principal() is still the principal", async () => {
      seenByHostGuard.length = 0;
      const r = await get(shielded, '/host/infer', {
        method: 'POST',
        token: await forge.sign(),
        json: { a: 1 },
      });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ subject: 'demo', method: 'oidc', user: { id: 'u-demo' }, keys: ['a'] });
      expect(seenByHostGuard).toEqual([{ id: 'u-demo' }]);
      expect(r.headers['x-host-user']).toBe('u-demo');
    });

    it('no user for the principal → 403 ERR_USER_UNKNOWN; the handler never runs', async () => {
      seenByHostGuard.length = 0;
      const token = await forge.sign({ sub: 'nobody' });
      const r = await get(shielded, '/host/infer', { method: 'POST', token, json: {} });
      expect({ status: r.status, code: r.body['code'] }).toEqual({ status: 403, code: 'ERR_USER_UNKNOWN' });
      expect(seenByHostGuard).toEqual([]);
    });

    it('a hook that throws → 503 ERR_USER_RESOLUTION_FAILED, nothing of its message sent or logged', async () => {
      const token = await forge.sign({ sub: 'crash' });
      const mark = logger.lines.length;
      const r = await get(shielded, '/host/infer', { method: 'POST', token, json: {} });
      expect(r.status).toBe(503);
      expect(r.body).toEqual({
        code: 'ERR_USER_RESOLUTION_FAILED',
        message: 'The caller could not be looked up; try again later.',
      });
      expect(linesSince(mark)).toContain('user.resolve failed: Error');
      expect(linesSince(mark)).not.toContain('hunter2');
    });
  });

  describe('refused on the headers alone (issue #13, 1b)', () => {
    // A body well under the limit (512 KiB by default): only its first bytes are ever sent.
    const head = (authorization?: string): string =>
      'POST /host/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
      (authorization ? `Authorization: ${authorization}\r\n` : '') +
      'Content-Length: 400000\r\n\r\n{"a":"';

    it.each([
      ['no credential', undefined, 'ERR_TOKEN_MISSING', 'Bearer'],
      [
        'a malformed token',
        'Bearer not-a.jwt',
        'ERR_TOKEN_MALFORMED',
        'Bearer error="invalid_token", error_description="ERR_TOKEN_MALFORMED"',
      ],
    ])(
      '%s: 401 while the client still holds the body, then close',
      async (_n, authorization, code, challenge) => {
        const r = await rawExchange(shielded, { ca: pki.ca.certPem, waitMs: 5_000 }, head(authorization));
        expect(r.status).toBe(401);
        expect(JSON.parse(r.body)).toEqual({ code, message: expect.any(String) });
        expect(r.headers['www-authenticate']).toBe(challenge);
        expect(r.headers['connection']).toBe('close');
        // The request gate's security headers are there, as on every answer.
        expect(r.headers['strict-transport-security']).toBeDefined();
        expect(r.headers['x-content-type-options']).toBe('nosniff');
        expect(r.closed).toBe(true);
      },
    );

    it('an expired token is refused the same way', async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = await forge.sign({ exp: now - 600, iat: now - 900 });
      const r = await rawExchange(shielded, { ca: pki.ca.certPem }, head(`Bearer ${token}`));
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ code: 'ERR_TOKEN_EXPIRED' });
      expect(r.data).not.toContain(token);
    });

    it('a valid token: nothing is answered until the body arrives, then 200', async () => {
      const token = await forge.sign();
      const body = JSON.stringify({ a: 'x'.repeat(1000) });
      const partial = await rawExchange(
        shielded,
        { ca: pki.ca.certPem, waitMs: 400 },
        `POST /host/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
      );
      expect(partial.data).toBe('');
      const full = await rawExchange(
        shielded,
        { ca: pki.ca.certPem, waitMs: 5_000 },
        `POST /host/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      expect(full.status).toBe(200);
      expect(JSON.parse(full.body)).toMatchObject({ subject: 'demo', keys: ['a'] });
    });

    it('a public route with a body is left to the application', async () => {
      const r = await rawExchange(
        shielded,
        { ca: pki.ca.certPem, waitMs: 400 },
        'POST /health HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 400000\r\n\r\n{',
      );
      // No early answer: Express/Fastify wait for the body of this (unknown) route.
      expect(r.data).toBe('');
    });
  });

  describe('optional mTLS: a certificate that failed verification (issue #13, 2)', () => {
    it.each([
      ['another CA', (): ClientCertificate => pki.otherCa.client],
      ['expired', (): ClientCertificate => pki.expired.client],
      ['revoked', (): ClientCertificate => pki.revoked.client],
    ])('%s + a valid token → 401 ERR_CLIENT_CERT_INVALID', async (_n, client) => {
      const r = await get(shielded, '/host/infer', {
        method: 'POST',
        token: await forge.sign(),
        client: client(),
        json: {},
      });
      expect({ status: r.status, code: r.body['code'] }).toEqual({
        status: 401,
        code: 'ERR_CLIENT_CERT_INVALID',
      });
      expect(r.headers['www-authenticate']).toBe('Bearer');
    });

    it('refused on the headers alone too, before the body', async () => {
      const token = await forge.sign();
      const r = await rawExchange(
        shielded,
        { ca: pki.ca.certPem, client: pki.otherCa.client },
        `POST /host/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}\r\nContent-Length: 400000\r\n\r\n{`,
      );
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ code: 'ERR_CLIENT_CERT_INVALID' });
    });

    it('the verified certificate + the same token → 200', async () => {
      const r = await get(shielded, '/host/infer', {
        method: 'POST',
        token: await forge.sign(),
        client: pki.client,
        json: {},
      });
      expect(r.status).toBe(200);
    });

    it('a public route reads no credential: 200 whatever the certificate', async () => {
      expect((await get(shielded, '/health/live', { client: pki.otherCa.client })).status).toBe(200);
    });
  });
});
