import { Inject, Injectable, Logger, type ExecutionContext } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { isShieldError, ShieldError, tlsSocketOf } from '@inference-shield/core';
import type { AuditEvent, AuditSink } from './audit.interface.js';
import { AUDIT_SINK, IDENTITY_OPTIONS, SHIELD_JWT_STRATEGY } from './identity.constants.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { presentsUnverifiedCertificate } from './peer-certificate.js';
import { resolveUserOf } from './user.resolver.js';
import { eventOf } from './identity.guard.js';
import { matchToken } from './policy.matcher.js';
import { PolicyRegistry } from './policy.registry.js';
import { tokenFactsOf } from './principal.factory.js';
import { attachPrincipal } from './principal.store.js';
import type { ShieldPrincipal } from './principal.interface.js';
import { passportFailureToShieldError, ShieldJwtStrategy } from './shield-jwt.strategy.js';

type Handler = (...args: never[]) => unknown;

/**
 * `AuthGuard('shield-jwt')` with Shield's refusals: every failure (a passport "fail", a
 * jsonwebtoken error, an exception in the strategy) becomes a coded 401 ShieldError instead of a
 * bare `UnauthorizedException` or a 500. On `@UsePassport(...)` routes it also enforces the
 * route's token conditions, and it records the same audit events as the Shield guard.
 */
@Injectable()
export class ShieldPassportGuard extends AuthGuard(SHIELD_JWT_STRATEGY) {
  private readonly logger = new Logger('ShieldIdentity');

  constructor(
    // Injected so that a missing ShieldPassportModule is a boot error, not a runtime 500.
    _strategy: ShieldJwtStrategy,
    private readonly policies: PolicyRegistry,
    @Inject(AUDIT_SINK) private readonly audit: AuditSink,
    @Inject(IDENTITY_OPTIONS) private readonly options: ResolvedIdentityOptions,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const cls = context.getClass();
    const handler = context.getHandler() as Handler;
    if (context.getType() !== 'http') throw new ShieldError('ERR_UNSUPPORTED_CONTEXT');
    const policy = this.policies.policyFor(cls, handler);
    const route = policy?.route ?? `${cls.name}.${handler.name}`;
    const request = context.switchToHttp().getRequest<object>();
    let principal: ShieldPrincipal | undefined;
    try {
      // As on the Shield guard: a client certificate that failed verification is refused.
      if (presentsUnverifiedCertificate(tlsSocketOf(request)))
        throw new ShieldError('ERR_CLIENT_CERT_INVALID');
      await super.canActivate(context);
      principal = (request as { user?: ShieldPrincipal }).user;
      if (!principal) throw new ShieldError('ERR_TOKEN_MISSING');
      if (policy?.kind === 'passport') {
        const facts = tokenFactsOf(principal);
        const mismatch = facts ? matchToken(policy.token, facts) : new ShieldError('ERR_TOKEN_MALFORMED');
        if (mismatch) throw mismatch;
      }
    } catch (err) {
      const error = isShieldError(err) ? err : passportFailureToShieldError(request, err, undefined);
      this.record(eventOf('deny', route, principal, error));
      throw error;
    }
    const user = this.options.user;
    attachPrincipal(request, principal, user === undefined);
    if (user !== undefined) {
      const error = await resolveUserOf(user, principal, request, this.logger);
      if (error) {
        this.record(eventOf('deny', route, principal, error));
        throw error;
      }
    }
    this.record(eventOf('allow', route, principal));
    return true;
  }

  override handleRequest<TUser = ShieldPrincipal>(
    err: unknown,
    user: unknown,
    info: unknown,
    context: ExecutionContext,
  ): TUser {
    if (!err && user) return user as TUser;
    throw passportFailureToShieldError(context.switchToHttp().getRequest<object>(), err, info);
  }

  private record(event: AuditEvent): void {
    try {
      this.audit.record(event);
    } catch {
      // A failing sink never turns a decision into a 500; the Shield guard reports sink failures.
    }
  }
}
