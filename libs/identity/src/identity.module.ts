import type { EventEmitter } from 'node:events';
import { Inject, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, ApplicationConfig, DiscoveryModule, HttpAdapterHost } from '@nestjs/core';
import { ShieldExceptionFilter, ShieldRedactingExceptionFilter } from '@inference-shield/core';
import { requestHooksOf } from '@inference-shield/https/internal';
import {
  earlyCandidates,
  expressEarlyRefusalHook,
  installExpressEarlyRefusal,
  installFastifyEarlyRefusal,
} from './early-refusal.js';
import type { AuditSink } from './audit.interface.js';
import { JsonLinesAuditSink } from './audit.sink.js';
import { AUDIT_SINK, IDENTITY_OPTIONS, RESOURCE_METADATA, TOKEN_VERIFIER } from './identity.constants.js';
import { IdentityDecider } from './identity.decider.js';
import { IdentityGuard } from './identity.guard.js';
import { ConfigurableIdentityModule, RAW_IDENTITY_OPTIONS } from './identity.module-definition.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { resolveIdentityOptions } from './identity-options.resolver.js';
import { PolicyRegistry } from './policy.registry.js';
import { preshapeRequests, requestShapeHook } from './request-shape.js';
import { TokenVerifier } from './tokens/index.js';
import {
  buildResourceMetadataResponse,
  challengeParamsOf,
  installResourceMetadataRoute,
  type ResourceMetadataResponse,
} from './discovery/resource-metadata.route.js';

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
      // Built (and signed) during app.init(): a bad signing key stops the app.
      provide: RESOURCE_METADATA,
      useFactory: (options: ResolvedIdentityOptions): Promise<ResourceMetadataResponse> | null =>
        options.resourceMetadata ? buildResourceMetadataResponse(options.resourceMetadata) : null,
      inject: [IDENTITY_OPTIONS],
    },
    {
      provide: AUDIT_SINK,
      useFactory: (options: ResolvedIdentityOptions): AuditSink =>
        options.audit.sink ?? new JsonLinesAuditSink(process.stdout),
      inject: [IDENTITY_OPTIONS],
    },
    PolicyRegistry,
    IdentityDecider,
    IdentityGuard,
    { provide: APP_GUARD, useExisting: IdentityGuard },
    // Refusals are ShieldErrors; without this filter Nest would answer them with a 500. The one
    // place Shield registers its filter: it answers Shield's own errors only, unless the
    // application opted in to `redactUnknownErrors`.
    {
      provide: APP_FILTER,
      useFactory: (options: ResolvedIdentityOptions, adapterHost: HttpAdapterHost): ShieldExceptionFilter =>
        options.redactUnknownErrors
          ? new ShieldRedactingExceptionFilter(adapterHost, challengeParamsOf(options.resourceMetadata))
          : new ShieldExceptionFilter(adapterHost, challengeParamsOf(options.resourceMetadata)),
      inject: [IDENTITY_OPTIONS, HttpAdapterHost],
    },
  ],
  exports: [IDENTITY_OPTIONS, TOKEN_VERIFIER, AUDIT_SINK, PolicyRegistry, IdentityDecider, IdentityGuard],
})
export class IdentityModule extends ConfigurableIdentityModule implements OnModuleInit, OnModuleDestroy {
  private unshape?: () => void;
  private unearly?: () => void;
  private unhook?: () => void;

  constructor(
    @Inject(TOKEN_VERIFIER) private readonly verifier: TokenVerifier | null,
    @Inject(IDENTITY_OPTIONS) private readonly options: ResolvedIdentityOptions,
    private readonly adapterHost: HttpAdapterHost,
    private readonly policies: PolicyRegistry,
    private readonly guard: IdentityGuard,
    private readonly config: ApplicationConfig,
    @Inject(RESOURCE_METADATA) private readonly metadata: ResourceMetadataResponse | null,
  ) {
    super();
  }

  /** Runs after PolicyRegistry's own onModuleInit (Nest calls a module's providers first). */
  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter as HttpAdapterHost['httpAdapter'] | undefined;
    const type = adapter?.getType();
    if (adapter === undefined || (type !== 'express' && type !== 'fastify')) return;
    // RFC 9728: only when the application configured it (a good guest adds no route otherwise).
    if (this.metadata) installResourceMetadataRoute(adapter, this.metadata);
    const candidates = earlyCandidates(this.policies.routeEntries(), this.config);
    if (type === 'fastify') {
      installFastifyEarlyRefusal(adapter.getInstance(), candidates, this.guard);
      // Fastify's request objects keep one shape (see request-shape.ts).
      return;
    }
    const server: unknown = adapter.getHttpServer();
    const property = this.options.user?.property;
    // Under createHttpsApp: the bootstrap's one seam for request hooks, in its stated order (after
    // the request gate, before the framework).
    const hooks = requestHooksOf(server);
    if (hooks !== undefined) {
      const off = [hooks.add('identity:request-shape', requestShapeHook(property))];
      const early = expressEarlyRefusalHook(candidates, this.guard);
      if (early !== undefined) off.push(hooks.add('identity:early-refusal', early));
      this.unhook = () => off.forEach((remove) => remove());
      return;
    }
    // A plain Nest app: no seam, so the same checks on the server and Express's own entry.
    this.unearly = installExpressEarlyRefusal(adapter.getInstance(), candidates, this.guard);
    if (server && typeof (server as EventEmitter).prependListener === 'function') {
      this.unshape = preshapeRequests(server as EventEmitter, property);
    }
  }

  async onModuleDestroy(): Promise<void> {
    this.unhook?.();
    this.unshape?.();
    this.unearly?.();
    await this.verifier?.close();
  }
}
