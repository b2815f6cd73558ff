import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Get, Module, Post, type ExecutionContext, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AuditEvent } from './audit.interface.js';
import { IdentityGuard } from './identity.guard.js';
import { IdentityModule } from './identity.module.js';
import type { IdentityModuleOptions } from './identity-options.interface.js';
import { createSigner, oidcOptions, type Signer } from '../test/identity.fixtures.js';
import { AllowSpiffe, Authenticated, Public, RequireScopes } from './policy.decorator.js';
import { UsePassport } from './shield-passport.module.js';
import { TOKEN_VERIFIER } from './identity.constants.js';
import { TokenVerifier } from './tokens/index.js';

let signer: Signer;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  signer = await createSigner();
});
afterAll(async () => {
  for (const app of opened) await app.close();
});

/** Creates and initialises an app the way main.ts would; abortOnError off so a failure is a rejection. */
async function boot(controllers: Type[], options: IdentityModuleOptions | (() => IdentityModuleOptions)) {
  const identity =
    typeof options === 'function'
      ? IdentityModule.forRootAsync({ useFactory: options })
      : IdentityModule.forRoot(options);
  @Module({ imports: [identity], controllers })
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

@Controller('np')
class NoPolicyController {
  @Get('open') open() {
    return 'oops';
  }
  @Post('items/:id') @Public() fine() {
    return 'fine';
  }
}

@Controller('cp')
@Authenticated()
class ClassPolicyController {
  @Get() covered() {
    return 'ok';
  }
}

@Controller('bad')
class BadPolicyController {
  @Get('domain') @AllowSpiffe('spiffe://elsewhere.example') outside() {
    return 'x';
  }
  @Get('mixed') @Public() @RequireScopes('a') mixed() {
    return 'x';
  }
}

@Controller('sc')
class ScopeController {
  @Get() @RequireScopes('models:infer') scoped() {
    return 'x';
  }
}

@Controller('pp')
class PassportWithoutModuleController {
  @Get() @UsePassport() p() {
    return 'x';
  }
}

describe('IdentityModule start-up', () => {
  it('refuses to start when a route has no policy, naming it', async () => {
    await expect(boot([NoPolicyController], { oidc: oidcOptions(signer) })).rejects.toThrow(
      /NoPolicyController\.open \(GET \/np\/open\): no access policy/,
    );
  });

  it('starts when every route has a policy, on the handler or the class', async () => {
    await expect(boot([ClassPolicyController], { oidc: oidcOptions(signer) })).resolves.toBeDefined();
  });

  it('refuses policies that cannot be enforced as written, naming each route', async () => {
    const failure = boot([BadPolicyController], {
      mtls: { trustDomains: ['shield.local'] },
      oidc: oidcOptions(signer),
    });
    await expect(failure).rejects.toThrow(
      /BadPolicyController\.outside \(GET \/bad\/domain\): trust domain "elsewhere.example" is outside/,
    );
    await expect(failure).rejects.toThrow(
      /BadPolicyController\.mixed \(GET \/bad\/mixed\): @Public\(\) cannot be combined/,
    );
  });

  it('refuses an OIDC policy when no issuer is configured', async () => {
    await expect(boot([ClassPolicyController, ScopeController], { mtls: {} })).rejects.toThrow(
      /ScopeController\.scoped \(GET \/sc\): oidc\(\.\.\.\) accepts bearer tokens but IdentityModule has no "oidc" issuers/,
    );
  });

  it('refuses @UsePassport() routes when ShieldPassportModule is not imported', async () => {
    await expect(boot([PassportWithoutModuleController], { oidc: oidcOptions(signer) })).rejects.toThrow(
      /ShieldJwtStrategy|ShieldPassportGuard/,
    );
  });

  it.each<[string, () => IdentityModuleOptions, RegExp]>([
    ['no method at all', () => ({}), /need "oidc" or "mtls"/],
    [
      'an unknown option',
      () => ({ mtls: {}, permissive: true }) as IdentityModuleOptions,
      /unknown option "permissive"/,
    ],
    [
      'an unknown mtls option',
      () => ({ mtls: { verify: false } }) as IdentityModuleOptions,
      /"mtls" has an unknown option "verify"/,
    ],
    [
      'a bad trust domain',
      () => ({ mtls: { trustDomains: ['Shield.Local'] } }),
      /"mtls.trustDomains" must hold SPIFFE trust domain/,
    ],
    [
      'an empty trust domain list',
      () => ({ mtls: { trustDomains: [] } }),
      /"mtls.trustDomains" must not be empty/,
    ],
    [
      'a bad role claim path',
      () => ({ mtls: {}, roleClaimPath: 'a..b' }),
      /"roleClaimPath" must be a dotted claim path/,
    ],
    [
      'a role claim path into the prototype',
      () => ({ mtls: {}, roleClaimPath: '__proto__.x' }),
      /"roleClaimPath"/,
    ],
    [
      'an audit sink without record()',
      () => ({ mtls: {}, audit: { sink: {} as never } }),
      /"audit.sink" must have a record/,
    ],
    [
      'an http: issuer',
      () => ({ oidc: { issuers: [{ issuer: 'http://idp.local', audience: 'x', jwks: { keys: [] } }] } }),
      /must be an https: URL/,
    ],
  ])('refuses %s with a TypeError naming the field', async (_name, options, message) => {
    await expect(boot([ClassPolicyController], options)).rejects.toThrow(message);
    await expect(boot([ClassPolicyController], options)).rejects.toBeInstanceOf(TypeError);
  });

  it('refuses to start when an issuer key set cannot be loaded (startup: fail)', async () => {
    const options: IdentityModuleOptions = {
      oidc: {
        issuers: [
          {
            issuer: 'https://idp.invalid',
            audience: 'x',
            jwksUri: 'https://127.0.0.1:9/jwks',
            fetchTimeoutMs: 500,
          },
        ],
      },
    };
    await expect(boot([ClassPolicyController], options)).rejects.toMatchObject({
      code: 'ERR_KEYSET_UNAVAILABLE',
    });
  });

  it('accepts forRootAsync with a factory, validated the same way', async () => {
    const app = await boot([ClassPolicyController], () => ({ oidc: oidcOptions(signer), mtls: {} }));
    expect(app.get(TOKEN_VERIFIER)).toBeInstanceOf(TokenVerifier);
    await expect(boot([ClassPolicyController], () => ({}))).rejects.toThrow(/need "oidc" or "mtls"/);
  });

  it('denies non-HTTP contexts (ws, rpc) instead of guessing', async () => {
    const events: AuditEvent[] = [];
    const app = await boot([ClassPolicyController], {
      mtls: {},
      audit: { sink: { record: (e) => events.push(e) } },
    });
    const guard = app.get(IdentityGuard);
    // A unit check of one method: a hand-made context of another transport.
    const context = {
      getType: () => 'rpc',
      getClass: () => ClassPolicyController,
      getHandler: () => ClassPolicyController.prototype.covered,
    } as unknown as ExecutionContext;
    await expect(guard.canActivate(context)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_CONTEXT' });
    expect(events).toEqual([expect.objectContaining({ decision: 'deny', code: 'ERR_UNSUPPORTED_CONTEXT' })]);
  });

  it('closes the token verifier when the app closes', async () => {
    const app = await boot([ClassPolicyController], { oidc: oidcOptions(signer) });
    const verifier = app.get<TokenVerifier>(TOKEN_VERIFIER);
    let closed = false;
    const original = verifier.close.bind(verifier);
    verifier.close = async () => {
      closed = true;
      await original();
    };
    await app.close();
    opened.splice(opened.indexOf(app), 1);
    expect(closed).toBe(true);
  });
});
