import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ShieldError, type ChallengeParams } from '@inference-shield/core/internal';
import { challengeParamsOf } from './discovery/resource-metadata.route.js';
import { eventOf } from './audit.event.js';
import { sendDpopNonce } from './dpop/dpop-nonce.js';
import { IdentityDecider, type Decision } from './identity.decider.js';
import { IDENTITY_OPTIONS } from './identity.constants.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import type { CompiledPolicy } from './policy.compiler.js';
import { PolicyRegistry } from './policy.registry.js';

type Handler = (...args: never[]) => unknown;

/**
 * A decision the header-only check (preflight) allowed, kept for the guard of the same request, so
 * a request with a body is not decided twice. Used only for the same route policy, the same
 * `Authorization` header (a middleware in between may replace it) and within
 * {@link EARLY_DECISION_MAX_AGE_MS}; anything else is decided again.
 */
interface EarlyDecision {
  readonly policy: CompiledPolicy;
  readonly authorization: unknown;
  readonly decision: Decision;
  readonly at: number;
}

/**
 * How old a preflight decision may be when the guard reuses it. The body is read in between: a
 * slow upload gets a new decision (an `exp` passed meanwhile is then refused), not a stale one.
 */
export const EARLY_DECISION_MAX_AGE_MS = 1000;

/** The Node request under a framework's request (Fastify's `raw`; Express's is the request). */
function rawRequestOf(request: object): object {
  const raw = (request as { raw?: unknown }).raw;
  return typeof raw === 'object' && raw !== null ? raw : request;
}

function authorizationOf(request: object): unknown {
  return (request as { headers?: { authorization?: unknown } }).headers?.authorization;
}

/**
 * The global guard `IdentityModule` registers: deny by default. For each request it looks up the
 * route's compiled policy, reads the credentials the policy accepts (the `Authorization` header,
 * the verified TLS client certificate: nothing else), and hands them to the {@link IdentityDecider},
 * which verifies them, matches the policy, attaches a frozen principal and records one audit
 * event. Every refusal is a coded `ShieldError`.
 */
@Injectable()
export class IdentityGuard implements CanActivate {
  private readonly includePublic: boolean;
  // Keyed by the Node request, held weakly: an entry the guard never reads goes with its request.
  private readonly early = new WeakMap<object, EarlyDecision>();
  /** What the early refusal's challenges carry (RFC 9728 `resource_metadata`), as the filter's. */
  readonly challenge: ChallengeParams;

  constructor(
    private readonly policies: PolicyRegistry,
    private readonly decider: IdentityDecider,
    @Inject(IDENTITY_OPTIONS) options: ResolvedIdentityOptions,
  ) {
    this.includePublic = options.audit.includePublic;
    this.challenge = challengeParamsOf(options.resourceMetadata);
  }

  /**
   * Returns `true` at once (no promise) when the decision needs no I/O, which is the case of a
   * client reusing its token on a keep-alive connection: Nest then skips awaiting the guard.
   * Every refusal is a rejected promise, never a synchronous throw.
   */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const cls = context.getClass();
    const handler = context.getHandler() as Handler;
    if (context.getType() !== 'http') {
      // WebSocket and RPC transports carry credentials elsewhere; until they are supported, deny.
      return this.decider.refuse(
        { allow: false, error: new ShieldError('ERR_UNSUPPORTED_CONTEXT') },
        `${cls.name}.${handler.name}`,
      );
    }
    const policy = this.policies.policyFor(cls, handler);
    if (!policy) {
      return this.decider.refuse(
        { allow: false, error: new ShieldError('ERR_AUTH_METHOD_NOT_ALLOWED') },
        `${cls.name}.${handler.name}`,
      );
    }
    if (policy.kind === 'public') {
      if (this.includePublic) this.decider.record(eventOf('allow', policy.route));
      return true;
    }
    // What `switchToHttp().getRequest()` returns, without the three closures it creates per call.
    const request = context.getArgByIndex<object>(0);
    const early = this.earlyDecisionFor(request, policy);
    if (early !== undefined) return this.conclude(early, policy, context, request);
    const credentials = this.decider.credentialsOf(request);
    // Optional mTLS lets a handshake finish with a certificate that failed verification (another
    // CA, expired, revoked). Presenting one is a broken credential, refused whatever else comes
    // with it, a valid token included: never silently ignored (passport routes included).
    if (credentials.peer === 'unverified') {
      return this.decider.refuse(
        { allow: false, error: new ShieldError('ERR_CLIENT_CERT_INVALID') },
        policy.route,
      );
    }
    // `@UsePassport()` put ShieldPassportGuard on this route; it decides with the same decider.
    if (policy.kind === 'passport') return true;

    const decision = this.decider.decide(policy, credentials);
    if (decision instanceof Promise) return decision.then((d) => this.conclude(d, policy, context, request));
    return this.conclude(decision, policy, context, request);
  }

  private conclude(
    decision: Decision,
    policy: CompiledPolicy,
    context: ExecutionContext,
    request: object,
  ): true | Promise<true> {
    if (decision.allow && decision.dpopNonce !== undefined) {
      sendDpopNonce(context.getArgByIndex<unknown>(1), decision.dpopNonce);
    }
    return this.decider.conclude(decision, policy.route, request);
  }

  /**
   * The header-only check run before the body is read (see early-refusal.ts): the refusal this
   * guard would give on the request's headers and TLS connection alone, when it is a 401 (a
   * missing or invalid credential); `undefined` otherwise (allowed, or refused for another reason,
   * which the guard then decides as usual). The same credentials reading and the same decision as
   * the guard. An allow is kept for this request's guard, which takes it instead of deciding again
   * (see {@link EarlyDecision}); when it decides again, a token verified here is recalled from the
   * verifier's cache, not verified twice. Records nothing: the caller records the refusal it sends.
   */
  preflight(
    policy: CompiledPolicy,
    request: object,
  ): ShieldError | undefined | Promise<ShieldError | undefined> {
    if (policy.kind === 'public') return undefined;
    // A passport route's compiled policy holds its token requirement: the passport door runs this
    // same decision, so what fails here fails there. Synchronous when the decision is.
    const credentials = this.decider.credentialsOf(request);
    const decision = this.decider.decide(policy, credentials);
    const kept = (d: Decision): ShieldError | undefined => {
      // An allow is kept for this request's guard (a passport route's door decides on its own).
      if (d.allow && policy.kind !== 'passport') {
        this.early.set(rawRequestOf(request), {
          policy,
          authorization: credentials.authorization,
          decision: d,
          at: Date.now(),
        });
      }
      return refusalOf(d);
    };
    return decision instanceof Promise ? decision.then(kept) : kept(decision);
  }

  /** The preflight's allow for this request and policy, when it may stand (see EarlyDecision). */
  private earlyDecisionFor(request: object, policy: CompiledPolicy): Decision | undefined {
    const raw = rawRequestOf(request);
    const entry = this.early.get(raw);
    if (entry === undefined) return undefined;
    this.early.delete(raw);
    if (entry.policy !== policy || Date.now() - entry.at > EARLY_DECISION_MAX_AGE_MS) return undefined;
    // The header the decision was made on, still the one the guard would read now (a middleware
    // may have replaced it).
    return authorizationOf(request) === entry.authorization ? entry.decision : undefined;
  }

  /** Records the deny event of a refusal sent by the early check (one event per request). */
  recordRefusal(route: string, error: ShieldError): void {
    this.decider.record(eventOf('deny', route, undefined, error));
  }
}

/** What the early check refuses: a 401 (a missing or invalid credential); nothing else. */
function refusalOf(decision: Decision): ShieldError | undefined {
  return decision.allow || decision.error.status !== 401 ? undefined : decision.error;
}
