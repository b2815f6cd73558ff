import { Inject, Injectable, Logger, RequestMethod, type OnModuleInit } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { IDENTITY_OPTIONS, SHIELD_POLICY_METADATA } from './identity.constants.js';
import type { ResolvedIdentityOptions, ResolvedRoutePolicy } from './identity-options.interface.js';
import { compilePolicy, type CompiledPolicy } from './policy.compiler.js';
import type { PolicyFragment } from './policy.interface.js';

type Handler = (...args: never[]) => unknown;

/** Where a route's policy came from, in the order they are looked at (the first found wins). */
export type PolicySource =
  'decorator on handler' | 'decorator on class' | 'options by path' | 'options by controller';

/** A route Nest serves: its controller and handler, method and path templates (no global prefix). */
export interface RouteEntry {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- controller classes
  readonly controller: Function;
  readonly handler: Handler;
  /** The module that declares the controller (RouterModule paths are set on it). */
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- module classes
  readonly module: Function | undefined;
  /** `GET`, `POST`, ... or `ALL`. */
  readonly method: string;
  /** Normalised templates (`/v1/models/:model/infer`); several when the decorators list several. */
  readonly paths: readonly string[];
  readonly policy: CompiledPolicy;
}

/**
 * Compiles every route's policy once and refuses to start when a route has none: a forgotten
 * decorator is a boot error, never an open door. Per request, the guard does one map lookup.
 *
 * A route's policy is, in this order: the policy decorators on its handler; those on its
 * controller class; the first `routePolicies` entry whose method and path match; the
 * `routePolicies` entry naming its controller class. The first found is used as a whole.
 */
@Injectable()
export class PolicyRegistry implements OnModuleInit {
  private readonly logger = new Logger('ShieldIdentity');
  // Keyed by class, then handler: an inherited handler can sit under two controllers whose
  // class-level policies differ, so the handler alone is not a safe key.
  private readonly compiled = new WeakMap<object, Map<Handler, CompiledPolicy | null>>();
  private readonly routes: RouteEntry[] = [];
  private readonly usedOptions = new Set<ResolvedRoutePolicy>();

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
        let source: string | undefined;
        try {
          const found = this.fragmentsFor(cls, handler as Handler);
          source = found?.source;
          const policy = this.compile(cls, handler as Handler);
          if (!policy) {
            problems.push(
              `${label}: no access policy (none on the handler, none on its class, no "routePolicies" entry for its path or controller); add @Public(), @Authenticated(), @RequireScopes(...), @AllowSpiffe(...) or @Allow(...)`,
            );
            continue;
          }
          const { method, paths } = routePathsOf(cls, handler);
          const module: unknown = wrapper.host?.metatype;
          this.routes.push({
            controller: cls,
            handler: handler as Handler,
            module: typeof module === 'function' ? module : undefined,
            method,
            paths,
            policy,
          });
          this.logger.debug(`${label}: ${policy.kind} policy from ${policy.source}`);
        } catch (err) {
          const from = source === undefined ? '' : ` (policy from ${source})`;
          problems.push(`${label}: ${err instanceof Error ? err.message : String(err)}${from}`);
        }
      }
    }
    // An option that decides no route is a typo, a module that is not there, or a rule shadowed
    // by decorators: refused, like an unknown option key, rather than silently protecting nothing.
    const entries: ResolvedRoutePolicy[] = [
      ...this.options.routePolicies.byPath,
      ...this.options.routePolicies.byController.values(),
    ];
    for (const entry of entries) {
      if (!this.usedOptions.has(entry)) {
        problems.push(
          `${entry.label}: decides no route (it matches none, or each route it matches has a policy of higher precedence)`,
        );
      }
    }
    if (problems.length > 0) {
      throw new Error(
        `IdentityModule refuses to start: ${problems.length} route(s) or route policies without a valid policy:\n  - ${problems.join('\n  - ')}`,
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

  /** Every route found at start-up with its compiled policy (for the header-only early check). */
  routeEntries(): readonly RouteEntry[] {
    return this.routes;
  }

  private compile(cls: object, handler: Handler): CompiledPolicy | undefined {
    const found = this.fragmentsFor(cls, handler);
    const policy = compilePolicy(found?.fragments, routeOf(cls, handler), this.options, found?.source);
    this.remember(cls, handler, policy ?? null);
    return policy;
  }

  /** The fragments that decide a route, and where they came from (see the class comment). */
  private fragmentsFor(
    cls: object,
    handler: Handler,
  ): { fragments: readonly PolicyFragment[]; source: string } | undefined {
    const onHandler = this.reflector.get<readonly PolicyFragment[] | undefined>(
      SHIELD_POLICY_METADATA,
      handler,
    );
    if (onHandler !== undefined) return { fragments: onHandler, source: 'decorator on handler' };
    const onClass = this.reflector.get<readonly PolicyFragment[] | undefined>(
      SHIELD_POLICY_METADATA,
      cls as Handler,
    );
    if (onClass !== undefined) return { fragments: onClass, source: 'decorator on class' };

    const { byPath, byController } = this.options.routePolicies;
    if (byPath.length > 0) {
      const { method, paths } = routePathsOf(cls, handler);
      const key = paths.map(comparable);
      const entry = byPath.find(
        (e) =>
          (e.method === undefined || e.method === method) &&
          key.every((p) => {
            const q = comparable(e.path);
            return p === q || (e.prefix && (q === '/' || p.startsWith(`${q}/`)));
          }),
      );
      if (entry) {
        this.usedOptions.add(entry);
        return { fragments: entry.fragments, source: `options by path, ${entry.label}` };
      }
    }
    // The controller itself, or a class it extends.
    for (let c: unknown = cls; typeof c === 'function' && c !== Function.prototype;) {
      const entry = byController.get(c);
      if (entry) {
        this.usedOptions.add(entry);
        return { fragments: entry.fragments, source: `options by controller, ${entry.label}` };
      }
      c = Object.getPrototypeOf(c);
    }
    return undefined;
  }

  private remember(cls: object, handler: Handler, policy: CompiledPolicy | null): void {
    let byHandler = this.compiled.get(cls);
    if (!byHandler) this.compiled.set(cls, (byHandler = new Map()));
    byHandler.set(handler, policy);
  }
}

/** Path parameters compare equal whatever their names: `/m/:name` and `/m/:model` are one route. */
function comparable(path: string): string {
  return path.replace(/\/:[^/]+/g, '/:');
}

function listOf(v: unknown): string[] {
  if (Array.isArray(v)) return v.length === 0 ? [''] : v.map((x) => String(x));
  return [typeof v === 'string' ? v : ''];
}

function joinPath(a: string, b: string): string {
  return `/${a}/${b}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
}

/** The method and every path template (controller paths × handler paths) of a route. */
export function routePathsOf(cls: object, handler: object): { method: string; paths: string[] } {
  const verb = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
  const method = verb === undefined ? 'ALL' : (RequestMethod[verb] ?? 'ALL');
  const paths: string[] = [];
  for (const c of listOf(Reflect.getMetadata(PATH_METADATA, cls))) {
    for (const h of listOf(Reflect.getMetadata(PATH_METADATA, handler))) paths.push(joinPath(c, h));
  }
  return { method, paths };
}

/** `GET /models/:name` from Nest's route metadata (the template, never a request URL). */
export function routeOf(cls: object, handler: object): string {
  const first = (v: unknown): string =>
    Array.isArray(v) ? String(v[0] ?? '') : typeof v === 'string' ? v : '';
  const verb = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
  const path = joinPath(
    first(Reflect.getMetadata(PATH_METADATA, cls)),
    first(Reflect.getMetadata(PATH_METADATA, handler)),
  );
  return `${verb === undefined ? 'ALL' : (RequestMethod[verb] ?? 'ALL')} ${path}`;
}
