/**
 * `@inference-shield/identity/passport`: the door for apps already on `@nestjs/passport`. A
 * `shield-jwt` strategy and a guard, adapters over the same decision as the Shield guard (one
 * verification, the same route rules, audit event and user hook). Needs the optional peers
 * `@nestjs/passport` and `passport`; the main entry imports without them.
 */
export { SHIELD_JWT_STRATEGY } from './identity.constants.js';
export { ShieldJwtStrategy } from './shield-jwt.strategy.js';
export { ShieldPassportGuard } from './shield-passport.guard.js';
export { ShieldPassportModule, UsePassport } from './shield-passport.module.js';
