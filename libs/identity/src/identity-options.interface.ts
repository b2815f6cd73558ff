import type { AuditSink } from './audit.interface.js';
import type {
  ResolvedResourceMetadataOptions,
  ResourceMetadataOptions,
} from './discovery/resource-metadata-options.interface.js';
import type { DpopOptions, ResolvedDpopOptions } from './dpop/dpop-options.interface.js';
import type { PolicyDecorator } from './policy.decorator.js';
import type { PolicyFragment } from './policy.interface.js';
import type { ShieldPrincipal } from './principal.interface.js';
import type { ResolvedTokenVerifierOptions, TokenVerifierOptions } from './tokens/index.js';

/** Inbound mTLS callers (the TLS layer itself is configured by `@inference-shield/https`). */
export interface MtlsOptions {
  /**
   * SPIFFE trust domains accepted at all. A client certificate whose SPIFFE ID lies outside them
   * (or that has none) does not authenticate. Omitted: every certificate the TLS layer verified does.
   */
  readonly trustDomains?: readonly string[];
}

/** Where access decisions are recorded. */
export interface AuditOptions {
  /**
   * Default: {@link JsonLinesAuditSink} on `process.stdout` (one JSON line per event, schema
   * `"v":1`, batched; docs/audit-events.md). `new LoggerAuditSink()` sends the lines through Nest's
   * `Logger` instead (context `ShieldAudit`), at 16 to 20 % of a small route's throughput.
   */
  readonly sink?: AuditSink;
  /** Also record requests to `@Public()` routes (default `false`: no identity is decided there). */
  readonly includePublic?: boolean;
}

/**
 * A policy for routes you cannot decorate (a vendored module's controller, a health route), matched
 * by route: the method and the path template as the controller declares it.
 *
 * @example
 * { method: 'GET', path: '/health/*', policy: Public() }
 */
export interface PathRoutePolicy {
  /** `GET`, `POST`, ... Omitted or `ALL`: routes of every method. `GET` does not match an `@All()` route. */
  readonly method?: string;
  /**
   * The route's path template, as the controller and handler declare it, without the global
   * prefix: `/health`, `/v1/models/:model/infer`. A trailing `/*` matches the path and every route
   * below it (`/health/*` matches `/health` and `/health/live`).
   */
  readonly path: string;
  /** One policy decorator, or several (merged as if written on one handler). */
  readonly policy: PolicyDecorator | readonly PolicyDecorator[];
}

/** A policy for every route of a controller class you cannot decorate. */
export interface ControllerRoutePolicy {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- any class, abstract included
  readonly controller: Function;
  readonly policy: PolicyDecorator | readonly PolicyDecorator[];
}

/** A policy given in the options: by path or by controller. */
export type RoutePolicy = PathRoutePolicy | ControllerRoutePolicy;

/** Maps the verified caller to the application's own user, once per request. */
export interface UserOptions {
  /**
   * Called once per request, after the caller was verified and the route's policy passed (never
   * on `@Public()` routes). Its result is stored on the request under `property`. Returning
   * `undefined` or `null` refuses the request (`403 ERR_USER_UNKNOWN`); throwing refuses it too:
   * a `ShieldError` or an `HttpException` as it is, anything else as `503 ERR_USER_RESOLUTION_FAILED`.
   */
  readonly resolve: (principal: ShieldPrincipal, request: object) => unknown;
  /** Request property that receives the result (default `user`, where passport code looks). */
  readonly property?: string;
}

/** Options of `IdentityModule.forRoot()`; at least one of `oidc` and `mtls` is required. */
export interface IdentityModuleOptions {
  /** Bearer access tokens: the issuers and their key sets (see the tokens section of the README). */
  readonly oidc?: TokenVerifierOptions;
  /** Callers authenticated by a verified TLS client certificate. */
  readonly mtls?: MtlsOptions;
  /**
   * RFC 9449 DPoP: accept DPoP-bound access tokens (`Authorization: DPoP`, `cnf.jkt`), each
   * request with a fresh proof. Needs `oidc`. Without it a DPoP-bound token is refused.
   */
  readonly dpop?: DpopOptions;
  readonly audit?: AuditOptions;
  /** Dotted path of the roles claim read by `@RequireRoles()`, e.g. `realm_access.roles` (default `roles`). */
  readonly roleClaimPath?: string;
  /**
   * Policies for routes that carry no policy decorator. A decorator on the handler, then one on
   * its class, win over these; then the first matching path entry; then a controller entry.
   */
  readonly routePolicies?: readonly RoutePolicy[];
  /** Maps the verified principal to the application's user (default: `req.user` is the principal). */
  readonly user?: UserOptions;
  /**
   * Opt-in: answer errors that Nest would turn into a bare `500` (not an `HttpException`, no HTTP
   * status) with `500 ERR_INTERNAL`, logged by name and first frame only. Default `false`: Shield
   * answers only its own errors and leaves the application's to the application and Nest.
   */
  readonly redactUnknownErrors?: boolean;
  /**
   * RFC 9728: serve `GET /.well-known/oauth-protected-resource[/<path>]` and name it in every
   * `WWW-Authenticate` challenge (`resource_metadata`). Nothing is served without it.
   */
  readonly resourceMetadata?: ResourceMetadataOptions;
}

/** A route policy from the options, checked and turned into decorator fragments. */
export interface ResolvedRoutePolicy {
  /** Where it came from, for start-up messages: `routePolicies[2] (GET /health/*)`. */
  readonly label: string;
  readonly fragments: readonly PolicyFragment[];
}

/** A path entry of `routePolicies`, resolved. */
export interface ResolvedPathRoutePolicy extends ResolvedRoutePolicy {
  /** Upper-case method, or `undefined` for every method. */
  readonly method: string | undefined;
  /** The path template without a trailing `/*`, normalised (one leading `/`, no trailing `/`). */
  readonly path: string;
  /** True when the entry ended with `/*` (the path and everything below it). */
  readonly prefix: boolean;
}

/** {@link IdentityModuleOptions} after validation: complete, frozen, parsed once at start-up. */
export interface ResolvedIdentityOptions {
  readonly oidc: ResolvedTokenVerifierOptions | undefined;
  readonly mtls: { readonly trustDomains: readonly string[] | undefined } | undefined;
  readonly dpop: ResolvedDpopOptions | undefined;
  readonly audit: { readonly sink: AuditSink | undefined; readonly includePublic: boolean };
  readonly roleClaimPath: readonly string[];
  readonly routePolicies: {
    readonly byPath: readonly ResolvedPathRoutePolicy[];
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- controller classes
    readonly byController: ReadonlyMap<Function, ResolvedRoutePolicy>;
  };
  readonly user:
    | {
        readonly resolve: (principal: ShieldPrincipal, request: object) => unknown;
        readonly property: string;
      }
    | undefined;
  readonly redactUnknownErrors: boolean;
  readonly resourceMetadata: ResolvedResourceMetadataOptions | undefined;
}
