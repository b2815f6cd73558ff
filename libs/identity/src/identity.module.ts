import type { EventEmitter } from 'node:events';
import { Inject, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, DiscoveryModule, HttpAdapterHost } from '@nestjs/core';
import { ShieldExceptionFilter } from '@inference-shield/core';
import type { AuditSink } from './audit.interface.js';
import { LoggerAuditSink } from './audit.sink.js';
import { AUDIT_SINK, IDENTITY_OPTIONS, TOKEN_VERIFIER } from './identity.constants.js';
import { IdentityGuard } from './identity.guard.js';
import { ConfigurableIdentityModule, RAW_IDENTITY_OPTIONS } from './identity.module-definition.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { resolveIdentityOptions } from './identity-options.resolver.js';
import { PolicyRegistry } from './policy.registry.js';
import { preshapeRequests } from './request-shape.js';
import { TokenVerifier } from './tokens/index.js';

/**
 * Creates the verifier during `app.init()`: with `startup: 'fail'` (the default) an unreachable or
 * empty key set rejects here, so the application does not start, rather than failing requests.
 */
async function createTokenVerifier(options: ResolvedIdentityOptions): Promise<TokenVerifier | null> {
  return options.oidc ? TokenVerifier.create(options.oidc) : null;
}

/**
 * Identity for a Nest application: a global deny-by-default guard, route policies checked at
 * start-up, OIDC access tokens, mTLS callers and an audit event per decision.
 *
 * @example
 * IdentityModule.forRoot({
 *   oidc: { issuers: [{ issuer: 'https://idp.example', audience: 'inference' }] },
 *   mtls: { trustDomains: ['shield.local'] },
 * })
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    { provide: IDENTITY_OPTIONS, useFactory: resolveIdentityOptions, inject: [RAW_IDENTITY_OPTIONS] },
    { provide: TOKEN_VERIFIER, useFactory: createTokenVerifier, inject: [IDENTITY_OPTIONS] },
    {
      provide: AUDIT_SINK,
      useFactory: (options: ResolvedIdentityOptions): AuditSink =>
        options.audit.sink ?? new LoggerAuditSink(),
      inject: [IDENTITY_OPTIONS],
    },
    PolicyRegistry,
    IdentityGuard,
    { provide: APP_GUARD, useExisting: IdentityGuard },
    // Refusals are ShieldErrors; without this filter Nest would answer them with a 500.
    { provide: APP_FILTER, useClass: ShieldExceptionFilter },
  ],
  exports: [IDENTITY_OPTIONS, TOKEN_VERIFIER, AUDIT_SINK, PolicyRegistry, IdentityGuard],
})
export class IdentityModule extends ConfigurableIdentityModule implements OnModuleInit, OnModuleDestroy {
  private unshape?: () => void;

  constructor(
    @Inject(TOKEN_VERIFIER) private readonly verifier: TokenVerifier | null,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    super();
  }

  onModuleInit(): void {
    // Express only: Fastify's request objects keep one shape (see request-shape.ts).
    const adapter = this.adapterHost.httpAdapter as HttpAdapterHost['httpAdapter'] | undefined;
    if (adapter?.getType() !== 'express') return;
    const server: unknown = adapter.getHttpServer();
    if (server && typeof (server as EventEmitter).prependListener === 'function') {
      this.unshape = preshapeRequests(server as EventEmitter);
    }
  }

  async onModuleDestroy(): Promise<void> {
    this.unshape?.();
    await this.verifier?.close();
  }
}
