import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ShieldExceptionFilter } from '@inference-shield/core';
import { UPSTREAM_DECLARED_NAMES, UPSTREAM_OPTIONS, UPSTREAM_REGISTRY } from './upstream.constants.js';
import {
  ConfigurableUpstreamModule,
  RAW_UPSTREAM_OPTIONS,
  UPSTREAM_ASYNC_OPTIONS_TYPE,
  UPSTREAM_OPTIONS_TYPE,
} from './upstream.module-definition.js';
import { resolveUpstreamModuleOptions } from './upstream-options.resolver.js';
import type { ResolvedUpstreamModuleOptions, UpstreamModuleOptions } from './upstream-options.interface.js';
import { UpstreamRegistry } from './upstream.registry.js';

function resolveDeclared(
  raw: UpstreamModuleOptions,
  declared: readonly string[],
): ResolvedUpstreamModuleOptions {
  const resolved = resolveUpstreamModuleOptions(raw);
  const names = Object.keys(resolved.upstreams);
  const missing = declared.filter((n) => !names.includes(n));
  const extra = names.filter((n) => !declared.includes(n));
  if (missing.length > 0 || extra.length > 0) {
    // Injection tokens exist only for declared names: an undeclared upstream could never be
    // injected, a missing one would fail at first use. Both are configuration mistakes.
    throw new TypeError(
      `"upstreamNames" (${declared.join(', ') || 'none'}) must match the configured upstreams (${names.join(', ')})`,
    );
  }
  return resolved;
}

/**
 * Outbound mTLS clients for named upstreams (hosted LLMs, embedding services, internal model
 * servers), and streaming proxies to them. Options are checked and certificates loaded at start-up;
 * a bad one stops `app.init()`.
 *
 * @example
 * UpstreamModule.forRoot({
 *   upstreams: {
 *     llm: {
 *       baseUrl: 'https://mtls.api.openai.com/v1',
 *       clientCertificate: { cert: '/run/certs/client.pem', key: '/run/certs/client-key.pem' },
 *       apiKey: { env: 'OPENAI_API_KEY' },
 *     },
 *   },
 * })
 */
@Module({
  providers: [
    {
      provide: UPSTREAM_OPTIONS,
      useFactory: resolveDeclared,
      inject: [RAW_UPSTREAM_OPTIONS, UPSTREAM_DECLARED_NAMES],
    },
    {
      provide: UPSTREAM_REGISTRY,
      useFactory: (options: ResolvedUpstreamModuleOptions) => UpstreamRegistry.create(options),
      inject: [UPSTREAM_OPTIONS],
    },
    // The proxy's refusals and upstream failures are ShieldErrors: without this filter an app that
    // has no IdentityModule would answer them with Nest's bare 500. It handles ShieldErrors only,
    // so a second registration (IdentityModule's) changes nothing.
    { provide: APP_FILTER, useClass: ShieldExceptionFilter },
  ],
  exports: [UPSTREAM_OPTIONS, UPSTREAM_REGISTRY],
})
export class UpstreamModule extends ConfigurableUpstreamModule {
  /** Configure the upstreams; the names come from `options.upstreams`. */
  static override forRoot(options: typeof UPSTREAM_OPTIONS_TYPE): DynamicModule {
    const names =
      typeof options === 'object' &&
      options !== null &&
      typeof options.upstreams === 'object' &&
      options.upstreams !== null
        ? Object.keys(options.upstreams)
        : [];
    return super.forRoot({ ...options, upstreamNames: options.upstreamNames ?? names });
  }

  /** Configure the upstreams from a factory; `upstreamNames` lists them (required). */
  static override forRootAsync(options: typeof UPSTREAM_ASYNC_OPTIONS_TYPE): DynamicModule {
    if (!Array.isArray(options.upstreamNames) || options.upstreamNames.length === 0) {
      throw new TypeError(
        '"upstreamNames" is required by UpstreamModule.forRootAsync: list the upstream names to inject',
      );
    }
    return super.forRootAsync(options);
  }
}
