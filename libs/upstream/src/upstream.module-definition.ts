import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
import {
  UPSTREAM_DECLARED_NAMES,
  UPSTREAM_REGISTRY,
  upstreamClientToken,
  upstreamProxyToken,
} from './upstream.constants.js';
import type { UpstreamModuleOptions } from './upstream-options.interface.js';
import type { UpstreamRegistry } from './upstream.registry.js';

/** Options `forRoot`/`forRootAsync` take besides the upstreams themselves. */
export interface UpstreamModuleExtras {
  /** Make the clients injectable everywhere (default `true`). */
  isGlobal: boolean;
  /**
   * The upstream names `@InjectUpstream(name)` will ask for. Required by `forRootAsync` (the names
   * must be known before the factory runs); `forRoot` takes them from `upstreams`. The factory's
   * upstreams must match this list exactly.
   */
  upstreamNames: readonly string[];
}

/** The per-name providers: `@InjectUpstream(name)` and `@InjectUpstreamProxy(name)`. */
export function namedUpstreamProviders(names: readonly string[]): Provider[] {
  return names.flatMap((name): Provider[] => [
    {
      provide: upstreamClientToken(name),
      useFactory: (registry: UpstreamRegistry) => registry.client(name),
      inject: [UPSTREAM_REGISTRY],
    },
    {
      provide: upstreamProxyToken(name),
      useFactory: (registry: UpstreamRegistry) => registry.proxy(name),
      inject: [UPSTREAM_REGISTRY],
    },
  ]);
}

/**
 * `UpstreamModule.forRoot(options)` and `forRootAsync({ upstreamNames, imports, useFactory, inject })`,
 * global by default.
 */
export const {
  ConfigurableModuleClass: ConfigurableUpstreamModule,
  MODULE_OPTIONS_TOKEN: RAW_UPSTREAM_OPTIONS,
  OPTIONS_TYPE: UPSTREAM_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: UPSTREAM_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<UpstreamModuleOptions>({ moduleName: 'ShieldUpstream' })
  .setClassMethodName('forRoot')
  .setExtras<UpstreamModuleExtras>({ isGlobal: true, upstreamNames: [] }, (definition, extras) => {
    const named = namedUpstreamProviders(extras.upstreamNames);
    return {
      ...definition,
      global: extras.isGlobal,
      providers: [
        ...(definition.providers ?? []),
        { provide: UPSTREAM_DECLARED_NAMES, useValue: Object.freeze([...extras.upstreamNames]) },
        ...named,
      ],
      exports: [...(definition.exports ?? []), ...named.map((p) => (p as { provide: string }).provide)],
    };
  })
  .build();
