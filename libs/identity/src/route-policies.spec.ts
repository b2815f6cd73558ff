import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Get, Module, Post, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IdentityModule } from './identity.module.js';
import type { IdentityModuleOptions } from './identity-options.interface.js';
import { resolveIdentityOptions } from './identity-options.resolver.js';
import { createSigner, oidcOptions, type Signer } from '../test/identity.fixtures.js';
import { Authenticated, Public, RequireScopes } from './policy.decorator.js';
import { PolicyRegistry } from './policy.registry.js';
import { UsePassport } from './shield-passport.module.js';

let signer: Signer;
const opened: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  signer = await createSigner();
});
afterAll(async () => {
  for (const app of opened) await app.close();
});

async function boot(controllers: Type[], extra: Partial<IdentityModuleOptions>) {
  @Module({ imports: [IdentityModule.forRoot({ oidc: oidcOptions(signer), ...extra })], controllers })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
  try {
    await app.init();
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  opened.push(app);
  return app;
}

@Controller('p')
@Authenticated()
class DecoratedController {
  @Get('handler') @Public() handler() {
    return 'x';
  }
  @Get('cls') cls() {
    return 'x';
  }
}

@Controller('v')
class VendoredController {
  @Get('health') health() {
    return 'x';
  }
  @Post('jobs') jobs() {
    return 'x';
  }
  @Get('jobs/:id') job() {
    return 'x';
  }
}

@Controller('o')
class OtherVendorController {
  @Get() index() {
    return 'x';
  }
}

describe('route policies from the options: precedence', () => {
  it('handler decorator > class decorator > options by path (first match) > options by controller', async () => {
    const app = await boot([DecoratedController, VendoredController, OtherVendorController], {
      routePolicies: [
        { method: 'GET', path: '/v/health', policy: Public() },
        { method: 'GET', path: '/v/jobs/:jobId', policy: RequireScopes('jobs:read') },
        { path: '/v/*', policy: RequireScopes('first-wildcard') },
        { controller: OtherVendorController, policy: Authenticated() },
      ],
    });
    const registry = app.get(PolicyRegistry);
    const of = (cls: Type, name: string) => {
      const p = registry.policyFor(
        cls,
        (cls.prototype as Record<string, () => unknown>)[name] as () => unknown,
      );
      return { kind: p?.kind, source: p?.source, scopes: p?.token[0]?.scopes };
    };
    expect(of(DecoratedController, 'handler')).toMatchObject({
      kind: 'public',
      source: 'decorator on handler',
    });
    expect(of(DecoratedController, 'cls')).toMatchObject({
      kind: 'authenticated',
      source: 'decorator on class',
    });
    expect(of(VendoredController, 'health')).toMatchObject({
      kind: 'public',
      source: 'options by path, routePolicies[0] (GET /v/health)',
    });
    // Parameter names do not matter: /v/jobs/:jobId is the route /v/jobs/:id.
    expect(of(VendoredController, 'job')).toMatchObject({ scopes: ['jobs:read'] });
    expect(of(VendoredController, 'jobs')).toMatchObject({
      scopes: ['first-wildcard'],
      source: 'options by path, routePolicies[2] (ALL /v/*)',
    });
    expect(of(OtherVendorController, 'index')).toMatchObject({
      kind: 'authenticated',
      source: 'options by controller, routePolicies[3] (controller OtherVendorController)',
    });
  });

  it('options by controller cover every route of the class', async () => {
    const app = await boot([VendoredController], {
      routePolicies: [{ controller: VendoredController, policy: [RequireScopes('a'), RequireScopes('b')] }],
    });
    const p = app.get(PolicyRegistry).policyFor(VendoredController, VendoredController.prototype.jobs);
    expect(p?.source).toBe('options by controller, routePolicies[0] (controller VendoredController)');
    expect(p?.token[0]?.scopes).toEqual(['a', 'b']);
  });
});

describe('route policies from the options: the app refuses to start', () => {
  it('a route left uncovered is named, with where policies were looked for', async () => {
    await expect(
      boot([VendoredController], { routePolicies: [{ method: 'GET', path: '/v/*', policy: Public() }] }),
    ).rejects.toThrow(
      /VendoredController\.jobs \(POST \/v\/jobs\): no access policy \(none on the handler, none on its class, no "routePolicies" entry/,
    );
  });

  it('an invalid policy from the options says where it came from', async () => {
    await expect(
      boot([VendoredController], {
        routePolicies: [{ controller: VendoredController, policy: [Public(), RequireScopes('a')] }],
      }),
    ).rejects.toThrow(
      /VendoredController\.health \(GET \/v\/health\): @Public\(\) cannot be combined with another policy decorator \(policy from options by controller, routePolicies\[0\]/,
    );
  });

  it('an entry that matches no route (a typo) is refused', async () => {
    await expect(
      boot([VendoredController], {
        routePolicies: [
          { controller: VendoredController, policy: Public() },
          { method: 'GET', path: '/v/helth', policy: Public() },
        ],
      }),
    ).rejects.toThrow(/routePolicies\[1\] \(GET \/v\/helth\): decides no route/);
  });

  it('an entry shadowed by decorators on every route it matches is refused (it would change nothing)', async () => {
    await expect(
      boot([DecoratedController], { routePolicies: [{ path: '/p/*', policy: RequireScopes('admin') }] }),
    ).rejects.toThrow(
      /routePolicies\[0\] \(ALL \/p\/\*\): decides no route \(it matches none, or each route it matches has a policy of higher precedence\)/,
    );
  });

  it('GET does not cover an @All() route, nor POST a GET route', async () => {
    await expect(
      boot([VendoredController], {
        routePolicies: [
          { method: 'POST', path: '/v/health', policy: Public() },
          { method: 'GET', path: '/v/jobs', policy: Public() },
        ],
      }),
    ).rejects.toThrow(/VendoredController\.health \(GET \/v\/health\): no access policy/);
  });
});

describe('resolveIdentityOptions: routePolicies, user, redactUnknownErrors', () => {
  const base = (): { oidc: ReturnType<typeof oidcOptions> } => ({ oidc: oidcOptions(signer) });
  it.each([
    ['an unknown key in an entry', [{ path: '/x', policy: Public(), scope: 'a' }], /unknown option "scope"/],
    [
      'path and controller together',
      [{ controller: VendoredController, path: '/x', policy: Public() }],
      /unknown option "path"/,
    ],
    ['no policy', [{ path: '/x' }], /"routePolicies\[0\]\.policy" must be a policy decorator/],
    [
      'a function that is not ours',
      [{ path: '/x', policy: () => undefined }],
      /not an Inference Shield policy decorator/,
    ],
    [
      // From options only the policy would arrive, not ShieldPassportGuard: an open route.
      'UsePassport() (it must decorate the route)',
      [{ path: '/x', policy: UsePassport({ scopes: ['admin'] }) }],
      /UsePassport\(\) must decorate the route itself/,
    ],
    [
      'UsePassport() by controller',
      [{ controller: VendoredController, policy: [UsePassport()] }],
      /UsePassport\(\) must decorate the route itself/,
    ],
    [
      'a bad method',
      [{ method: 'FETCH', path: '/x', policy: Public() }],
      /"routePolicies\[0\]\.method" must be one of/,
    ],
    ['a wildcard in the middle', [{ path: '/a/*/b', policy: Public() }], /route path template/],
    [
      'a controller twice',
      [
        { controller: VendoredController, policy: Public() },
        { controller: VendoredController, policy: Public() },
      ],
      /names VendoredController a second time/,
    ],
    ['not an array', { path: '/x', policy: Public() }, /"routePolicies" must be an array/],
  ])('refuses %s', (_n, routePolicies, message) => {
    expect(() => resolveIdentityOptions({ ...base(), routePolicies })).toThrow(message);
  });

  it.each([
    ['a resolve that is not a function', { resolve: 'x' }, /"user\.resolve" must be a function/],
    [
      'a reserved property',
      { resolve: (): number => 1, property: 'headers' },
      /"user\.property" must be an identifier/,
    ],
    ['__proto__', { resolve: (): number => 1, property: '__proto__' }, /"user\.property"/],
    ['an unknown key', { resolve: (): number => 1, as: 'x' }, /unknown option "as"/],
  ])('refuses user with %s', (_n, user, message) => {
    expect(() => resolveIdentityOptions({ ...base(), user })).toThrow(message);
  });

  it('redactUnknownErrors must be a boolean, default false', () => {
    expect(resolveIdentityOptions(base()).redactUnknownErrors).toBe(false);
    expect(() => resolveIdentityOptions({ ...base(), redactUnknownErrors: 'yes' })).toThrow(
      /"redactUnknownErrors" must be a boolean/,
    );
  });
});
