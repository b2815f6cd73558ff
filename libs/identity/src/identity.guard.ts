import type { TLSSocket } from 'node:tls';
import { Inject, Injectable, Logger, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { isShieldError, ShieldError, tlsSocketOf } from '@inference-shield/core';
import { AuditRecord } from './audit.event.js';
import type { AuditEvent, AuditSink } from './audit.interface.js';
import { AUDIT_SINK, IDENTITY_OPTIONS, TOKEN_VERIFIER } from './identity.constants.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { verifiedPeerOf, type PeerIdentity } from './peer-certificate.js';
import type { CompiledPolicy } from './policy.compiler.js';
import { matchMtls, matchToken } from './policy.matcher.js';
import { PolicyRegistry } from './policy.registry.js';
import { peerPrincipalOf, tokenIdentityOf } from './principal.factory.js';
import { attachPrincipal } from './principal.store.js';
import { presentsUnverifiedCertificate } from './peer-certificate.js';
import { resolveUserOf } from './user.resolver.js';
import type { ShieldPrincipal } from './principal.interface.js';
import {
  extractBearerToken,
  rawHeadersOf,
  repeatsAuthorization,
  type TokenVerifier,
  type VerifiedToken,
  type VerifyContext,
} from './tokens/index.js';

type Decision =
  | { readonly allow: true; readonly principal: ShieldPrincipal }
  | { readonly allow: false; readonly error: ShieldError; readonly principal?: ShieldPrincipal };

type Handler = (...args: never[]) => unknown;

const NO_CERTIFICATE: VerifyContext = Object.freeze({});
// One verify context per verified peer certificate, not one object per request.
const peerContexts = new WeakMap<PeerIdentity, VerifyContext>();

/** The RFC 8705 context of a request: its verified client certificate, or none. */
function contextOf(peer: PeerIdentity | undefined): VerifyContext {
  if (!peer) return NO_CERTIFICATE;
  let ctx = peerContexts.get(peer);
  if (!ctx) {
    ctx = Object.freeze({ clientCertificate: peer.certificate });
    peerContexts.set(peer, ctx);
  }
  return ctx;
}

/**
 * The global guard `IdentityModule` registers: deny by default. For each request it looks up the
 * route's compiled policy, reads the credentials the policy accepts (the `Authorization` header,
 * the verified TLS client certificate: nothing else), verifies them, matches the policy, attaches
 * a frozen principal, and records one audit event. Every refusal is a coded `ShieldError`.
 */
@Injectable()
export class IdentityGuard implements CanActivate {
  private readonly logger = new Logger('ShieldIdentity');
  private readonly maxTokenBytes: number;

  constructor(
    private readonly policies: PolicyRegistry,
    @Inject(IDENTITY_OPTIONS) private readonly options: ResolvedIdentityOptions,
    @Inject(TOKEN_VERIFIER) private readonly verifier: TokenVerifier | null,
    @Inject(AUDIT_SINK) private readonly audit: AuditSink,
  ) {
    this.maxTokenBytes = options.oidc?.maxTokenBytes ?? 0;
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
      return this.refuse(
        { allow: false, error: new ShieldError('ERR_UNSUPPORTED_CONTEXT') },
        `${cls.name}.${handler.name}`,
      );
    }
    const policy = this.policies.policyFor(cls, handler);
    if (!policy) {
      return this.refuse(
        { allow: false, error: new ShieldError('ERR_AUTH_METHOD_NOT_ALLOWED') },
        `${cls.name}.${handler.name}`,
      );
    }
    if (policy.kind === 'public') {
      if (this.options.audit.includePublic) this.record(eventOf('allow', policy.route));
      return true;
    }
    // What `switchToHttp().getRequest()` returns, without the three closures it creates per call.
    const request = context.getArgByIndex<object>(0);
    // Optional mTLS lets a handshake finish with a certificate that failed verification (another
    // CA, expired, revoked). Presenting one is a broken credential, refused whatever else comes
    // with it, a valid token included: never silently ignored.
    if (presentsUnverifiedCertificate(tlsSocketOf(request))) {
      return this.refuse({ allow: false, error: new ShieldError('ERR_CLIENT_CERT_INVALID') }, policy.route);
    }
    // `@UsePassport()` put ShieldPassportGuard on this route; it decides with the same verifier and rules.
    if (policy.kind === 'passport') return true;

    const decision = this.decide(policy, request);
    if (decision instanceof Promise) return decision.then((d) => this.conclude(d, policy.route, request));
    return this.conclude(decision, policy.route, request);
  }

  /**
   * The header-only check run before the body is read (see early-refusal.ts): the refusal this
   * guard would give on the request's headers and TLS connection alone, when it is a 401 (a
   * missing or invalid credential); `undefined` otherwise (allowed, or refused for another reason,
   * which the guard then decides as usual). Records nothing: the caller records the refusal it
   * sends.
   */
  async preflight(policy: CompiledPolicy, request: object): Promise<ShieldError | undefined> {
    if (policy.kind === 'public') return undefined;
    if (presentsUnverifiedCertificate(tlsSocketOf(request)))
      return new ShieldError('ERR_CLIENT_CERT_INVALID');
    // A passport route's compiled policy holds its token requirement: the passport path runs this
    // same verification first, so what fails here fails there.
    const decision = await this.decide(policy, request);
    if (decision.allow || decision.error.status !== 401) return undefined;
    return decision.error;
  }

  /** Records the deny event of a refusal sent by the early check (one event per request). */
  recordRefusal(route: string, error: ShieldError): void {
    this.record(eventOf('deny', route, undefined, error));
  }

  private conclude(decision: Decision, route: string, request: object): true | Promise<true> {
    if (!decision.allow) return this.refuse(decision, route);
    const user = this.options.user;
    attachPrincipal(request, decision.principal, user === undefined);
    if (user !== undefined) return this.resolveUser(user, decision.principal, route, request);
    this.record(eventOf('allow', route, decision.principal));
    return true;
  }

  /** The `user.resolve` hook (see user.resolver.ts), then the allow event; or the refusal. */
  private async resolveUser(
    user: NonNullable<ResolvedIdentityOptions['user']>,
    principal: ShieldPrincipal,
    route: string,
    request: object,
  ): Promise<true> {
    const error = await resolveUserOf(user, principal, request, this.logger);
    if (error) return this.refuse({ allow: false, error, principal }, route);
    this.record(eventOf('allow', route, principal));
    return true;
  }

  /**
   * Tries the alternatives the request has credentials for. A bearer token that is presented is
   * always verified, and a bad one is a 401 even if the client certificate would pass: a broken
   * credential is never silently ignored. A valid token that misses the route's token conditions
   * still lets a verified certificate pass the route's mTLS alternatives (they are ORed).
   *
   * Synchronous when the connection presents the same `Authorization` header as on its previous
   * verified request ({@link TokenVerifier.recall}, which re-checks time, keys and binding).
   */
  private decide(policy: CompiledPolicy, request: object): Decision | Promise<Decision> {
    const socket = tlsSocketOf(request);
    const peer = verifiedPeerOf(socket);
    if (policy.token.length === 0) return this.decideMtls(policy, socket, peer, undefined);
    const header = (request as { headers?: Record<string, string | string[] | undefined> }).headers
      ?.authorization;
    if (header === undefined) return this.decideMtls(policy, socket, peer, undefined);
    // Before anything reads the header, the memo included: `headers.authorization` is only the first.
    if (repeatsAuthorization(rawHeadersOf(request))) {
      return { allow: false, error: new ShieldError('ERR_TOKEN_MALFORMED') };
    }
    if (this.verifier && socket && typeof header === 'string') {
      let verified: VerifiedToken | undefined;
      try {
        verified = this.verifier.recall(socket, header, contextOf(peer));
      } catch (err) {
        return { allow: false, error: this.asShieldError(err) };
      }
      if (verified) return this.decideWithToken(policy, verified, socket, peer);
    }
    return this.verifyThenDecide(policy, header, socket, peer);
  }

  private async verifyThenDecide(
    policy: CompiledPolicy,
    header: string | string[],
    socket: TLSSocket | undefined,
    peer: PeerIdentity | undefined,
  ): Promise<Decision> {
    const token = this.bearerTokenOf(header);
    if (token instanceof ShieldError) return { allow: false, error: token };
    if (token === undefined) return this.decideMtls(policy, socket, peer, undefined);
    let verified: VerifiedToken;
    try {
      if (!this.verifier) throw new ShieldError('ERR_TOKEN_ISSUER_UNKNOWN');
      // With the verified certificate, a bound token is checked against it (RFC 8705 §3);
      // without one, a bound token is refused.
      verified =
        socket && typeof header === 'string'
          ? await this.verifier.verifyAuthorization(socket, header, contextOf(peer))
          : await this.verifier.verify(token, contextOf(peer));
    } catch (err) {
      return { allow: false, error: this.asShieldError(err) };
    }
    return this.decideWithToken(policy, verified, socket, peer);
  }

  private decideWithToken(
    policy: CompiledPolicy,
    verified: VerifiedToken,
    socket: TLSSocket | undefined,
    peer: PeerIdentity | undefined,
  ): Decision {
    let principal: ShieldPrincipal | undefined;
    let failure: Decision;
    try {
      const identity = tokenIdentityOf(verified, this.options.roleClaimPath);
      principal = identity.principal;
      const mismatch = matchToken(policy.token, identity.facts);
      if (!mismatch) return { allow: true, principal };
      failure = { allow: false, error: mismatch, principal };
    } catch (err) {
      return { allow: false, error: this.asShieldError(err), ...(principal ? { principal } : {}) };
    }
    return this.decideMtls(policy, socket, peer, failure);
  }

  private decideMtls(
    policy: CompiledPolicy,
    socket: TLSSocket | undefined,
    peer: PeerIdentity | undefined,
    failure: Decision | undefined,
  ): Decision {
    if (policy.mtls.length > 0) {
      if (peer) {
        const td = this.options.mtls?.trustDomains;
        if (td && (peer.trustDomain === undefined || !td.includes(peer.trustDomain))) {
          return failure ?? { allow: false, error: new ShieldError('ERR_CLIENT_CERT_INVALID') };
        }
        const principal = peerPrincipalOf(peer);
        const mismatch = matchMtls(policy.mtls, peer);
        if (!mismatch) return { allow: true, principal };
        failure ??= { allow: false, error: mismatch, principal };
      }
    }

    if (failure) return failure;
    return {
      allow: false,
      error: new ShieldError(policy.token.length > 0 ? 'ERR_TOKEN_MISSING' : 'ERR_CLIENT_CERT_MISSING'),
    };
  }

  /**
   * The bearer token of the `Authorization` header (RFC 6750 §2.1; never the query string or a
   * cookie), `undefined` when there is no bearer credential (another scheme such as Basic), or
   * the refusal for a broken or oversized one.
   */
  private bearerTokenOf(header: string | string[]): string | ShieldError | undefined {
    try {
      return extractBearerToken(header, this.maxTokenBytes);
    } catch (err) {
      if (isShieldError(err) && err.code === 'ERR_TOKEN_MISSING') return undefined;
      return this.asShieldError(err);
    }
  }

  private refuse(decision: Extract<Decision, { allow: false }>, route: string): Promise<never> {
    this.record(eventOf('deny', route, decision.principal, decision.error));
    return Promise.reject(decision.error);
  }

  private asShieldError(err: unknown): ShieldError {
    if (isShieldError(err)) return err;
    // A verifier bug must still be a refusal, not a 500 and not an open door. Name only: a library
    // message can quote its input.
    this.logger.error(
      `token verification failed unexpectedly: ${err instanceof Error ? err.name : typeof err}`,
    );
    return new ShieldError('ERR_TOKEN_MALFORMED', { cause: err });
  }

  private record(event: AuditEvent): void {
    try {
      this.audit.record(event);
    } catch (err) {
      this.logger.error(`audit sink failed: ${err instanceof Error ? err.name : typeof err}`);
    }
  }
}

// ISO time of the current millisecond: under load many decisions share one. The `Date` is
// formatted once per second; each new millisecond only appends three digits to that prefix.
let isoMs = -1;
let isoText = '';
let isoSecond = Number.NaN;
let isoPrefix = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    const second = Math.floor(now / 1000);
    if (second !== isoSecond) {
      isoSecond = second;
      // "2026-11-26T06:02:33.000Z" without "000Z" (any year length: toISOString's own format).
      isoPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    }
    const ms = now - second * 1000;
    isoText = `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
    isoMs = now;
  }
  return isoText;
}

/**
 * Builds the audit event of a decision: who and where, never the credential. Every event has the
 * same shape (absent facts are `undefined`, which JSON leaves out), so the hot path stays
 * monomorphic.
 */
export function eventOf(
  decision: 'allow' | 'deny',
  route: string,
  principal?: ShieldPrincipal,
  error?: ShieldError,
): AuditEvent {
  return new AuditRecord(isoNow(), decision, route, principal, error?.code);
}
