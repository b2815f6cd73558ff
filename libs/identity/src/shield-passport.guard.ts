import { Injectable, type ExecutionContext } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { isShieldError, ShieldError } from '@inference-shield/core/internal';
import { SHIELD_JWT_STRATEGY } from './identity.constants.js';
import { sendDpopNonce } from './dpop/dpop-nonce.js';
import { IdentityDecider } from './identity.decider.js';
import { PolicyRegistry } from './policy.registry.js';
import type { ShieldPrincipal } from './principal.interface.js';
import { PASSPORT_DECISION, ShieldJwtStrategy, type PassportDecisionSlot } from './shield-jwt.strategy.js';

type Handler = (...args: never[]) => unknown;

/**
 * `AuthGuard('shield-jwt')` with the Shield guard's decision, through passport: passport runs the
 * `shield-jwt` strategy, which asks the same {@link IdentityDecider} about this route's policy
 * (the `@UsePassport(...)` requirement). This guard then ends the decision as the Shield guard
 * does: the principal attached, the `user.resolve` hook, one audit event; or the coded refusal.
 */
@Injectable()
export class ShieldPassportGuard extends AuthGuard(SHIELD_JWT_STRATEGY) {
  // The slot of each request being decided, between canActivate and the strategy (passport passes
  // only the options object along); this guard's own, emptied as each request ends.
  private readonly slots = new WeakMap<object, PassportDecisionSlot>();

  constructor(
    // Injected so that a missing ShieldPassportModule is a boot error, not a runtime 500.
    _strategy: ShieldJwtStrategy,
    private readonly policies: PolicyRegistry,
    private readonly decider: IdentityDecider,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const cls = context.getClass();
    const handler = context.getHandler() as Handler;
    const label = `${cls.name}.${handler.name}`;
    if (context.getType() !== 'http') {
      return this.decider.refuse({ allow: false, error: new ShieldError('ERR_UNSUPPORTED_CONTEXT') }, label);
    }
    const policy = this.policies.policyFor(cls, handler);
    // On another route (a `@UseGuards(ShieldPassportGuard)` of the application's own), the
    // strategy's own policy applies: any valid token.
    const slot: PassportDecisionSlot = policy?.kind === 'passport' ? { policy } : {};
    const route = policy?.route ?? label;
    const request = context.getArgByIndex<object>(0);
    this.slots.set(request, slot);
    try {
      await super.canActivate(context);
    } catch (err) {
      // The strategy's decision, with the principal when the token was valid (a 403), or what
      // passport itself failed with.
      const decision = slot.decision;
      if (decision && !decision.allow) return this.decider.refuse(decision, route);
      return this.decider.refuse({ allow: false, error: refusalOf(err) }, route);
    } finally {
      this.slots.delete(request);
    }
    // Only the strategy's own decision counts: never whatever other middleware put on `req.user`.
    const decision = slot.decision;
    if (!decision?.allow)
      return this.decider.refuse({ allow: false, error: new ShieldError('ERR_TOKEN_MISSING') }, route);
    if (decision.dpopNonce !== undefined)
      sendDpopNonce(context.getArgByIndex<unknown>(1), decision.dpopNonce);
    return this.decider.conclude({ allow: true, principal: decision.principal }, route, request);
  }

  /** The options `passport.authenticate` passes to the strategy: this request's decision slot. */
  override getAuthenticateOptions(context: ExecutionContext): Record<string | symbol, unknown> {
    const slot = this.slots.get(context.getArgByIndex<object>(0));
    return slot ? { session: false, [PASSPORT_DECISION]: slot } : { session: false };
  }

  override handleRequest<TUser = ShieldPrincipal>(err: unknown, user: unknown, info: unknown): TUser {
    if (!err && user) return user as TUser;
    throw err ?? refusalOf(info);
  }
}

/** The refusal behind a passport failure: the strategy's own `ShieldError`, else no token. */
function refusalOf(failure: unknown): ShieldError {
  if (isShieldError(failure)) return failure;
  // Several strategies failed: passport passes their challenges as a list.
  if (Array.isArray(failure)) {
    const ours = failure.find(isShieldError);
    if (ours) return ours;
  }
  return new ShieldError('ERR_TOKEN_MISSING');
}
