import { Inject, Injectable, Logger, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { isShieldError, ShieldError } from '@shield/core';
import type { AuditEvent, AuditSink } from './audit.interface.js';
import { AUDIT_SINK, IDENTITY_OPTIONS, PRINCIPAL_KEY, TOKEN_VERIFIER } from './identity.constants.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { tlsSocketOf, verifiedPeerOf } from './peer-certificate.js';
import type { CompiledPolicy } from './policy.compiler.js';
import { matchMtls, matchToken } from './policy.matcher.js';
import { PolicyRegistry } from './policy.registry.js';
import { peerPrincipalOf, tokenIdentityOf } from './principal.factory.js';
import type { ShieldPrincipal } from './principal.interface.js';
import { extractBearerToken, type TokenVerifier } from './tokens/index.js';

type Decision =
  | { readonly allow: true; readonly principal: ShieldPrincipal }
  | { readonly allow: false; readonly error: ShieldError; readonly principal?: ShieldPrincipal };

type Handler = (...args: never[]) => unknown;

const NO_CERTIFICATE = Object.freeze({});

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

  async canActivate(context: ExecutionContext): Promise<boolean> {
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
    // `@UsePassport()` put ShieldPassportGuard on this route; it decides with the same verifier and rules.
    if (policy.kind === 'passport') return true;

    const request = context.switchToHttp().getRequest<object>();
    const decision = await this.decide(policy, request);
    if (!decision.allow) return this.refuse(decision, policy.route);
    attachPrincipal(request, decision.principal);
    this.record(eventOf('allow', policy.route, decision.principal));
    return true;
  }

  /**
   * Tries the alternatives the request has credentials for. A bearer token that is presented is
   * always verified, and a bad one is a 401 even if the client certificate would pass: a broken
   * credential is never silently ignored. A valid token that misses the route's token conditions
   * still lets a verified certificate pass the route's mTLS alternatives (they are ORed).
   */
  private async decide(policy: CompiledPolicy, request: object): Promise<Decision> {
    const socket = tlsSocketOf(request);
    const peer = verifiedPeerOf(socket);
    let failure: Decision | undefined;

    const token = policy.token.length > 0 ? this.bearerTokenOf(request) : undefined;
    if (token instanceof ShieldError) return { allow: false, error: token };
    if (token !== undefined) {
      let principal: ShieldPrincipal | undefined;
      try {
        if (!this.verifier) throw new ShieldError('ERR_TOKEN_ISSUER_UNKNOWN');
        // With the verified certificate, a bound token is checked against it (RFC 8705 §3);
        // without one, a bound token is refused.
        const verified = await this.verifier.verify(
          token,
          peer ? { clientCertificate: peer.certificate } : NO_CERTIFICATE,
        );
        const identity = tokenIdentityOf(verified, this.options.roleClaimPath);
        principal = identity.principal;
        const mismatch = matchToken(policy.token, identity.facts);
        if (!mismatch) return { allow: true, principal };
        failure = { allow: false, error: mismatch, principal };
      } catch (err) {
        return { allow: false, error: this.asShieldError(err), ...(principal ? { principal } : {}) };
      }
    }

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
      } else if (socket?.getPeerX509Certificate()) {
        // A certificate the TLS layer did not verify (optional mTLS lets the handshake finish).
        return failure ?? { allow: false, error: new ShieldError('ERR_CLIENT_CERT_INVALID') };
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
   * cookie), `undefined` when there is no bearer credential (no header, or another scheme such as
   * Basic), or the refusal for a broken or oversized one.
   */
  private bearerTokenOf(request: object): string | ShieldError | undefined {
    const header = (request as { headers?: Record<string, string | string[] | undefined> }).headers
      ?.authorization;
    if (header === undefined) return undefined;
    try {
      return extractBearerToken(header, this.maxTokenBytes);
    } catch (err) {
      if (isShieldError(err) && err.code === 'ERR_TOKEN_MISSING') return undefined;
      return this.asShieldError(err);
    }
  }

  private refuse(decision: Extract<Decision, { allow: false }>, route: string): never {
    this.record(eventOf('deny', route, decision.principal, decision.error));
    throw decision.error;
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

/** Attaches the principal under a private symbol, and as `req.user` for code written for passport. */
export function attachPrincipal(request: object, principal: ShieldPrincipal): void {
  const r = request as { [PRINCIPAL_KEY]?: ShieldPrincipal; user?: unknown };
  r[PRINCIPAL_KEY] = principal;
  r.user = principal;
}

// ISO time of the current millisecond: under load many decisions share one, and formatting a Date
// costs about a microsecond, a visible share of the guard's budget.
let isoMs = 0;
let isoText = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
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
  return {
    time: isoNow(),
    decision,
    route,
    method: principal?.method,
    subject: principal?.subject,
    spiffeId: principal?.spiffeId,
    issuer: principal?.issuer,
    scopes: principal && principal.scopes.length > 0 ? principal.scopes : undefined,
    code: error?.code,
  };
}
