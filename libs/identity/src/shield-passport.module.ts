import { applyDecorators, Global, Module, UseGuards } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { passportPolicy, type PolicyDecorator } from './policy.decorator.js';
import type { TokenRequirement } from './policy.interface.js';
import { ShieldJwtStrategy } from './shield-jwt.strategy.js';
import { ShieldPassportGuard } from './shield-passport.guard.js';

/**
 * For applications on `@nestjs/passport`: registers the `shield-jwt` strategy and provides
 * `ShieldPassportGuard`. Needs `IdentityModule.forRoot({ oidc })`, whose verifier, keys and rules
 * it shares. Passport keeps strategies in one process-wide registry: one such app per process.
 */
@Global()
@Module({
  imports: [PassportModule],
  providers: [ShieldJwtStrategy, ShieldPassportGuard],
  exports: [ShieldJwtStrategy, ShieldPassportGuard],
})
export class ShieldPassportModule {}

/**
 * The route's policy is enforced by passport: `ShieldPassportGuard` verifies the bearer token with
 * the `shield-jwt` strategy, then checks `requirement` (scopes, roles, claims...). The Shield guard
 * lets these routes through to it; the decorator applies both, so neither can be forgotten.
 *
 * @example
 * @Get('models') @UsePassport({ scopes: ['models:read'] })
 */
export function UsePassport(requirement: TokenRequirement = {}): PolicyDecorator {
  return applyDecorators(passportPolicy(requirement), UseGuards(ShieldPassportGuard)) as PolicyDecorator;
}
