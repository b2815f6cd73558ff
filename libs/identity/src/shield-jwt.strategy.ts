import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { isShieldError, ShieldError } from '@inference-shield/core/internal';
import passport from 'passport';
import { IDENTITY_OPTIONS, SHIELD_JWT_STRATEGY } from './identity.constants.js';
import { IdentityDecider, type Decision } from './identity.decider.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { compilePolicy, type CompiledPolicy } from './policy.compiler.js';

/** Where `ShieldPassportGuard` passes the route's policy, and receives the decision. */
export const PASSPORT_DECISION = Symbol('@inference-shield/identity:passport-decision');

/** The authenticate options `ShieldPassportGuard` gives the strategy for one request. */
export interface PassportDecisionSlot {
  /** The route's `@UsePassport(...)` policy; absent elsewhere (any valid token). */
  readonly policy?: CompiledPolicy;
  /** Set by the strategy: the decision, allow or deny, with the principal when there is one. */
  decision?: Decision;
}

/** passport's strategy API, as the base class provides it. */
interface PassportActions {
  success(user: unknown, info?: unknown): void;
  fail(challenge?: unknown, status?: number): void;
  error(err: unknown): void;
}

/**
 * The `shield-jwt` passport strategy, for applications built on `@nestjs/passport`: an adapter
 * over the same decision as the Shield guard (the same {@link IdentityDecider}: one verifier call,
 * the same rules, `crit`, `b64`, duplicate JSON members, `exp` and `sub` required, each issuer's
 * own keys, RFC 8705 binding...). Nothing else verifies the token: no jsonwebtoken, no second
 * check, no error messages to interpret. A refusal is the decider's coded `ShieldError`, handed
 * to passport as an error (a missing token as a `fail`, so another strategy may try).
 *
 * Through `ShieldPassportGuard` (`@UsePassport(...)`), the route's requirement is matched and the
 * audit event and `user.resolve` hook are the guard's. Through a plain `AuthGuard('shield-jwt')`,
 * any valid token of a configured issuer passes, and `req.user` is its `ShieldPrincipal`.
 */
@Injectable()
export class ShieldJwtStrategy extends PassportStrategy(passport.Strategy, SHIELD_JWT_STRATEGY) {
  /** Any valid token of any configured issuer: the policy of a plain `AuthGuard('shield-jwt')`. */
  private readonly anyToken: CompiledPolicy;

  constructor(
    private readonly decider: IdentityDecider,
    @Inject(IDENTITY_OPTIONS) options: ResolvedIdentityOptions,
  ) {
    super();
    if (!options.oidc) {
      throw new TypeError('ShieldPassportModule needs IdentityModule.forRoot({ oidc: { issuers: [...] } })');
    }
    const anyToken = compilePolicy(
      [{ kind: 'allow', alternatives: [{ method: 'oidc' }, { method: 'saml' }] }],
      `${SHIELD_JWT_STRATEGY} strategy`,
      options,
    );
    if (!anyToken) throw new TypeError('ShieldJwtStrategy: no token policy');
    this.anyToken = anyToken;
  }

  /** passport calls this per request, with the options the guard gave `passport.authenticate`. */
  override authenticate(request: object, options?: { [PASSPORT_DECISION]?: PassportDecisionSlot }): void {
    const slot = options?.[PASSPORT_DECISION];
    const actions = this as unknown as PassportActions;
    let pending: Decision | Promise<Decision>;
    try {
      pending = this.decider.decide(slot?.policy ?? this.anyToken, this.decider.credentialsOf(request));
    } catch (err) {
      actions.error(isShieldError(err) ? err : new ShieldError('ERR_TOKEN_MALFORMED', { cause: err }));
      return;
    }
    Promise.resolve(pending).then(
      (decision) => {
        if (slot) slot.decision = decision;
        if (decision.allow) actions.success(decision.principal);
        // No bearer credential at all: a fail, so that another strategy of the same guard may try.
        else if (decision.error.code === 'ERR_TOKEN_MISSING') actions.fail(decision.error, 401);
        else actions.error(decision.error);
      },
      (err: unknown) => actions.error(err),
    );
  }

  /** Not used: {@link authenticate} decides (passport-strategy's callback style has no role here). */
  validate(): never {
    throw new ShieldError('ERR_TOKEN_MALFORMED');
  }
}
