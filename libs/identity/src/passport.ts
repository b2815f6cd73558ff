/**
 * `@inference-shield/identity/passport`: the door for apps already on `@nestjs/passport`. A
 * `shield-jwt` strategy and a guard that decide with the same verifier and route rules as
 * `IdentityGuard`. Needs the optional peers `@nestjs/passport`, `passport` and `passport-jwt`;
 * the main entry imports without them.
 */
export { ShieldJwtStrategy } from './shield-jwt.strategy.js';
export { ShieldPassportGuard } from './shield-passport.guard.js';
export { ShieldPassportModule, UsePassport } from './shield-passport.module.js';
