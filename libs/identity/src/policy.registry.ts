import { Inject, Injectable, RequestMethod, type OnModuleInit } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { IDENTITY_OPTIONS, SHIELD_POLICY_METADATA } from './identity.constants.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { compilePolicy, type CompiledPolicy } from './policy.compiler.js';
import type { PolicyFragment } from './policy.interface.js';

type Handler = (...args: never[]) => unknown;

/**
 * Compiles every route's policy once and refuses to start when a route has none: a forgotten
 * decorator is a boot error, never an open door. Per request, the guard does one map lookup.
 */
@Injectable()
export class PolicyRegistry implements OnModuleInit {
  // Keyed by class, then handler: an inherited handler can sit under two controllers whose
  // class-level policies differ, so the handler alone is not a safe key.
  private readonly compiled = new WeakMap<object, Map<Handler, CompiledPolicy | null>>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(IDENTITY_OPTIONS) private readonly options: ResolvedIdentityOptions,
  ) {}

  onModuleInit(): void {
    const problems: string[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const cls = wrapper.metatype;
      if (typeof cls !== 'function') continue;
      const proto = cls.prototype as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const handler = proto[name];
        if (typeof handler !== 'function' || Reflect.getMetadata(PATH_METADATA, handler) === undefined)
          continue;
        const label = `${cls.name}.${name} (${routeOf(cls, handler)})`;
        try {
          if (!this.compile(cls, handler as Handler)) {
            problems.push(
              `${label}: no access policy; add @Public(), @Authenticated(), @RequireScopes(...), @AllowSpiffe(...) or @Allow(...)`,
            );
          }
        } catch (err) {
          problems.push(`${label}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    if (problems.length > 0) {
      throw new Error(
        `IdentityModule refuses to start: ${problems.length} route(s) without a valid policy:\n  - ${problems.join('\n  - ')}`,
      );
    }
  }

  /**
   * The compiled policy of a route; `undefined` when it has none or an invalid one (the guard then
   * denies). Routes are compiled at start-up; a miss here only happens for handlers Nest did not
   * list as controllers, and is compiled once then cached.
   */
  policyFor(cls: object, handler: Handler): CompiledPolicy | undefined {
    const hit = this.compiled.get(cls)?.get(handler);
    if (hit !== undefined) return hit ?? undefined;
    try {
      return this.compile(cls, handler);
    } catch {
      this.remember(cls, handler, null);
      return undefined;
    }
  }

  private compile(cls: object, handler: Handler): CompiledPolicy | undefined {
    const fragments = this.reflector.getAllAndOverride<readonly PolicyFragment[] | undefined>(
      SHIELD_POLICY_METADATA,
      [handler, cls as Handler],
    );
    const policy = compilePolicy(fragments, routeOf(cls, handler), this.options);
    this.remember(cls, handler, policy ?? null);
    return policy;
  }

  private remember(cls: object, handler: Handler, policy: CompiledPolicy | null): void {
    let byHandler = this.compiled.get(cls);
    if (!byHandler) this.compiled.set(cls, (byHandler = new Map()));
    byHandler.set(handler, policy);
  }
}

/** `GET /models/:name` from Nest's route metadata (the template, never a request URL). */
export function routeOf(cls: object, handler: object): string {
  const first = (v: unknown): string =>
    Array.isArray(v) ? String(v[0] ?? '') : typeof v === 'string' ? v : '';
  const verb = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
  const path =
    `/${first(Reflect.getMetadata(PATH_METADATA, cls))}/${first(Reflect.getMetadata(PATH_METADATA, handler))}`
      .replace(/\/+/g, '/')
      .replace(/(.)\/$/, '$1');
  return `${verb === undefined ? 'ALL' : (RequestMethod[verb] ?? 'ALL')} ${path}`;
}
