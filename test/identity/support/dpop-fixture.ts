/**
 * The fixture app of the DPoP specs: the same routes through both doors (the Shield guard and the
 * passport strategy), a route that demands sender-constrained tokens, and an answer that shows
 * the principal's DPoP key thumbprint.
 */
import { Controller, HttpCode, Module, Post, type Type } from '@nestjs/common';
import {
  IdentityModule,
  Principal,
  RequireScopes,
  RequireSenderConstrained,
  type IdentityModuleOptions,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import { ShieldPassportModule, UsePassport } from '@inference-shield/identity/passport';

/** What the routes answer. */
export interface DpopAnswer {
  readonly subject: string;
  readonly route: string;
  readonly dpopKeyThumbprint: string | null;
}

/** Paths of the fixture routes. */
export const DPOP_ROUTES = {
  guard: '/v1/models/demo/infer',
  passport: '/passport/v1/models/demo/infer',
  sender: '/v1/models/demo/infer-constrained',
} as const;

/** The two doors every DPoP row runs through. */
export const DOORS = ['guard', 'passport'] as const;
export type Door = (typeof DOORS)[number];

function answer(caller: ShieldPrincipal, route: string): DpopAnswer {
  return { subject: caller.subject, route, dpopKeyThumbprint: caller.dpopKeyThumbprint ?? null };
}

@Controller('v1/models/:model')
class GuardController {
  @Post('infer')
  @HttpCode(200)
  @RequireScopes('models:infer')
  infer(@Principal() caller: ShieldPrincipal): DpopAnswer {
    return answer(caller, 'guard');
  }

  @Post('infer-constrained')
  @HttpCode(200)
  @RequireScopes('models:infer')
  @RequireSenderConstrained()
  constrained(@Principal() caller: ShieldPrincipal): DpopAnswer {
    return answer(caller, 'sender');
  }
}

@Controller('passport/v1/models/:model')
class PassportController {
  @Post('infer')
  @HttpCode(200)
  @UsePassport({ scopes: ['models:infer'] })
  infer(@Principal() caller: ShieldPrincipal): DpopAnswer {
    return answer(caller, 'passport');
  }
}

/** The passport door's path, served by the Shield guard (an app without the passport module). */
@Controller('passport/v1/models/:model')
class GuardOnPassportPathController {
  @Post('infer')
  @HttpCode(200)
  @RequireScopes('models:infer')
  infer(@Principal() caller: ShieldPrincipal): DpopAnswer {
    return answer(caller, 'guard');
  }
}

/**
 * A root module with IdentityModule (these options) and both doors. With `passport: false`, the
 * passport path is served by the guard and passport is not loaded: passport registers strategies
 * in one process-wide registry, so a second app of the same process would take over the first
 * app's passport door.
 */
export function dpopFixtureModule(identity: IdentityModuleOptions, opts: { passport?: boolean } = {}): Type {
  const passport = opts.passport ?? true;
  @Module({
    imports: passport
      ? [IdentityModule.forRoot(identity), ShieldPassportModule]
      : [IdentityModule.forRoot(identity)],
    controllers: [GuardController, passport ? PassportController : GuardOnPassportPathController],
  })
  class DpopFixtureModule {}
  return DpopFixtureModule;
}
