/**
 * DPoP options are checked when the application starts: a bad `dpop` option stops `app.init()`
 * with a `TypeError` naming the field, through forRoot and forRootAsync alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Get, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IdentityModule } from './identity.module.js';
import type { IdentityModuleOptions } from './identity-options.interface.js';
import { createSigner, oidcOptions, type Signer } from '../test/identity.fixtures.js';
import { RequireScopes } from './policy.decorator.js';

let signer: Signer;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  signer = await createSigner();
});
afterAll(async () => {
  for (const app of opened) await app.close();
});

@Controller('models')
class ModelsController {
  @Get() @RequireScopes('models:read') list(): string[] {
    return [];
  }
}

async function boot(
  options: IdentityModuleOptions | (() => IdentityModuleOptions),
  controllers: Type[] = [ModelsController],
) {
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

describe('IdentityModule with dpop', () => {
  it('starts with a valid dpop option', async () => {
    await expect(
      boot({ oidc: oidcOptions(signer), dpop: { origin: 'https://api.example' } }),
    ).resolves.toBeDefined();
  });

  it.each<[string, () => IdentityModuleOptions, RegExp]>([
    [
      'dpop without oidc',
      () => ({ mtls: {}, dpop: { origin: 'https://api.example' } }),
      /"dpop" needs "oidc"/,
    ],
    ['no origin', () => ({ oidc: oidcOptions(signer), dpop: {} as never }), /"dpop\.origin" is required/],
    [
      'an http origin',
      () => ({ oidc: oidcOptions(signer), dpop: { origin: 'http://api.example' } }),
      /"dpop\.origin"/,
    ],
    [
      'an unknown key (no switch turns the replay check off)',
      () => ({
        oidc: oidcOptions(signer),
        dpop: { origin: 'https://api.example', allowReplay: true } as never,
      }),
      /allowReplay/,
    ],
    [
      'a short nonce secret',
      () => ({
        oidc: oidcOptions(signer),
        dpop: { origin: 'https://api.example', nonce: { secret: 'short' } },
      }),
      /"dpop\.nonce\.secret" must be at least 32 bytes/,
    ],
    [
      'an issuer flag that is not a boolean',
      () => ({
        oidc: oidcOptions(signer, {
          issuers: [{ ...oidcOptions(signer).issuers[0], requireSenderConstrained: 'yes' } as never],
        }),
      }),
      /requireSenderConstrained/,
    ],
  ])('refuses to start: %s', async (_name, options, message) => {
    await expect(boot(options())).rejects.toThrow(message);
    await expect(boot(options)).rejects.toBeInstanceOf(TypeError);
  });
});
