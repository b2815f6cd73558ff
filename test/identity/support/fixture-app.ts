/**
 * The fixture application: model-like routes behind `IdentityModule`, as an inference service
 * would declare them. One public health route, a token route needing `models:infer`, a route that
 * takes an OIDC token or an mTLS workload, a route that needs a certificate-bound token, and
 * (optionally) the same inference route enforced through passport (`@UsePassport`).
 */
import { Controller, Get, HttpCode, Module, Post, type DynamicModule, type Type } from '@nestjs/common';
import {
  Allow,
  IdentityModule,
  mtls,
  oidc,
  Principal,
  Public,
  RequireScopes,
  type IdentityModuleOptions,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import { ShieldPassportModule, UsePassport } from '@inference-shield/identity/passport';

/** What the fixture routes answer: the facts of the principal a test checks (no claims dump). */
export interface PrincipalAnswer {
  readonly method: string;
  readonly subject: string;
  readonly issuer: string;
  readonly scopes: readonly string[];
  readonly spiffeId?: string;
  readonly certificateFingerprint?: string;
  readonly route: string;
}

function answer(principal: ShieldPrincipal, route: string): PrincipalAnswer {
  return {
    method: principal.method,
    subject: principal.subject,
    issuer: principal.issuer,
    scopes: principal.scopes,
    ...(principal.spiffeId !== undefined ? { spiffeId: principal.spiffeId } : {}),
    ...(principal.certificateFingerprint !== undefined
      ? { certificateFingerprint: principal.certificateFingerprint }
      : {}),
    route,
  };
}

/** Paths of the fixture routes (model name `demo`). */
export const ROUTES = {
  health: '/health',
  infer: '/v1/models/demo/infer',
  inferMtls: '/v1/models/demo/infer-mtls',
  inferBound: '/v1/models/demo/infer-bound',
  passportInfer: '/passport/v1/models/demo/infer',
} as const;

@Controller()
class HealthController {
  @Get('health')
  @Public()
  health(): { status: string } {
    return { status: 'ok' };
  }
}

@Controller('v1/models/:model')
class ModelController {
  @Post('infer')
  @HttpCode(200)
  @RequireScopes('models:infer')
  infer(@Principal() caller: ShieldPrincipal): PrincipalAnswer {
    return answer(caller, 'infer');
  }

  /** A gateway workload in the shield.local trust domain, or a caller with a `models:infer` token. */
  @Post('infer-mtls')
  @HttpCode(200)
  @Allow(oidc({ scopes: ['models:infer'] }), mtls({ trustDomains: ['shield.local'] }))
  inferMtls(@Principal() caller: ShieldPrincipal): PrincipalAnswer {
    return answer(caller, 'infer-mtls');
  }

  /** RFC 8705: the token must be bound to the TLS client certificate of this connection. */
  @Post('infer-bound')
  @HttpCode(200)
  @Allow(oidc({ scopes: ['models:infer'], boundToken: true }))
  inferBound(@Principal() caller: ShieldPrincipal): PrincipalAnswer {
    return answer(caller, 'infer-bound');
  }
}

@Controller('passport/v1/models/:model')
class PassportModelController {
  @Post('infer')
  @HttpCode(200)
  @UsePassport({ scopes: ['models:infer'] })
  infer(@Principal() caller: ShieldPrincipal): PrincipalAnswer {
    return answer(caller, 'passport-infer');
  }
}

/**
 * The root module of the fixture app. With `passport`, the passport route is added (passport keeps
 * its strategies process-wide: one such app per test file).
 */
export function fixtureModule(identity: IdentityModuleOptions, opts: { passport?: boolean } = {}): Type {
  const controllers: Type[] = [HealthController, ModelController];
  const modules: (DynamicModule | Type)[] = [IdentityModule.forRoot(identity)];
  if (opts.passport) {
    modules.push(ShieldPassportModule);
    controllers.push(PassportModelController);
  }

  @Module({ imports: modules, controllers })
  class IdentityFixtureModule {}
  return IdentityFixtureModule;
}
