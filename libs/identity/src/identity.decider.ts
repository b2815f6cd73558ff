import type { TLSSocket } from 'node:tls';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { isShieldError, ShieldError, tlsSocketOf } from '@inference-shield/core/internal';
import { eventOf } from './audit.event.js';
import type { AuditEvent, AuditSink } from './audit.interface.js';
import { DpopVerifier, type DpopRequest } from './dpop/dpop.verifier.js';
import { AUDIT_SINK, IDENTITY_OPTIONS, TOKEN_VERIFIER } from './identity.constants.js';
import { AuthTelemetry } from './identity.telemetry.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import {
  presentsUnverifiedCertificate,
  verifiedPeerOf,
  type PeerIdentities,
  type PeerIdentity,
} from './peer-certificate.js';
import type { CompiledPolicy } from './policy.compiler.js';
import { matchMtls, matchToken } from './policy.matcher.js';
import { tokenIdentityOf, type TokenIdentity } from './principal.factory.js';
import type { ShieldPrincipal } from './principal.interface.js';
import { attachPrincipal } from './principal.store.js';
import {
  authorizationSchemeOf,
  extractAccessToken,
  rawHeadersOf,
  repeatsAuthorization,
  repeatsDpopHeader,
  type TokenVerifier,
  type VerifiedToken,
  type VerifyContext,
} from './tokens/index.js';
import { resolveUserOf } from './user.resolver.js';

/** The outcome of one decision: the principal to attach, or the refusal (with who, if known). */
export type Decision =
  | {
      readonly allow: true;
      readonly principal: ShieldPrincipal;
      /** RFC 9449 §8.2: the server nonce to send with the response (the request used DPoP, nonces on). */
      readonly dpopNonce?: string;
    }
  | { readonly allow: false; readonly error: ShieldError; readonly principal?: ShieldPrincipal };

/**
 * What a request presents, read from it once: the TLS socket and its client certificate, and the
 * `Authorization` header. Nothing else of the request is ever looked at (no query string, no
 * cookie, no `X-Client-Cert`).
 */
export interface Credentials {
  readonly socket: TLSSocket | undefined;
  /**
   * The client certificate: its identity when the TLS layer verified it, `'unverified'` when one
   * was presented and failed verification (optional mTLS), `undefined` when there is none.
   */
  readonly peer: PeerIdentity | 'unverified' | undefined;
  /**
   * The single `Authorization` header, as received (the verifier reads it); a refusal when it was
   * sent more than once (Node keeps only the first: a proxy reading the last would see another
   * caller); `undefined` when absent.
   */
  readonly authorization: string | ShieldError | undefined;
  /** RFC 9449: the request's `DPoP` proof and what it must match; only with the `dpop` option. */
  readonly dpop?: DpopRequest;
}

const NO_CERTIFICATE: VerifyContext = Object.freeze({});
const DPOP_NO_CERTIFICATE: VerifyContext = Object.freeze({ dpop: true });

type RequestLike = {
  headers?: Record<string, string | string[] | undefined>;
  method?: unknown;
  originalUrl?: unknown;
  url?: unknown;
  raw?: { method?: unknown; url?: unknown };
};

/**
 * The one access decision, shared by both doors (the global `IdentityGuard` and the passport
 * strategy and guard) and by the header-only early refusal: read the credentials, verify the
 * token (one verifier call: the connection's memo, else the full check), match the route's
 * policy, then attach the principal, run the `user.resolve` hook and record one audit event.
 * It owns the per-connection peer identities and the per-token principals: nothing is cached at
 * module level, everything goes with the module.
 */
@Injectable()
export class IdentityDecider {
  private readonly logger = new Logger('ShieldIdentity');
  private readonly peers: PeerIdentities = new WeakMap();
  // A verifier that caches verified tokens hands back the same object for the same token: the
  // principal and the policy facts are then built once per token, not once per request.
  private readonly identities = new WeakMap<VerifiedToken, TokenIdentity>();
  // RFC 9449, with the `dpop` option: the proof check of every request presenting a DPoP-bound token.
  private readonly dpop: DpopVerifier | undefined;
  private readonly dpopContexts = new WeakMap<VerifyContext, VerifyContext>();
  // OpenTelemetry (API only): a no-op unless the application registered an SDK before start-up.
  private readonly telemetry = new AuthTelemetry();

  constructor(
    @Inject(IDENTITY_OPTIONS) private readonly options: ResolvedIdentityOptions,
    @Inject(TOKEN_VERIFIER) private readonly verifier: TokenVerifier | null,
    @Inject(AUDIT_SINK) private readonly audit: AuditSink,
  ) {
    this.dpop = options.dpop ? new DpopVerifier(options.dpop) : undefined;
  }

  /** Reads a request's credentials (an Express request, a Fastify request or its raw request). */
  credentialsOf(request: object): Credentials {
    const socket = tlsSocketOf(request);
    const peer = presentsUnverifiedCertificate(socket) ? 'unverified' : verifiedPeerOf(socket, this.peers);
    const header = (request as { headers?: Record<string, string | string[] | undefined> }).headers
      ?.authorization;
    let authorization: Credentials['authorization'];
    if (header !== undefined) {
      // Before anything reads the header, the memo included: `headers.authorization` is only the first.
      authorization =
        typeof header !== 'string' || repeatsAuthorization(rawHeadersOf(request))
          ? new ShieldError('ERR_TOKEN_MALFORMED')
          : header;
    }
    if (this.dpop === undefined) return { socket, peer, authorization };
    return { socket, peer, authorization, dpop: dpopRequestOf(request) };
  }

  /**
   * Decides a route's policy for these credentials. A client certificate that failed verification
   * is refused whatever else comes with it. A bearer token that is presented is always verified,
   * and a bad one is a 401 even if the client certificate would pass: a broken credential is never
   * silently ignored. A valid token that misses the route's token conditions still lets a verified
   * certificate pass the route's mTLS alternatives (they are ORed).
   *
   * Synchronous when the connection presents the same `Authorization` header as on its previous
   * verified request ({@link TokenVerifier.recall}, which re-checks time, keys and binding).
   */
  decide(policy: CompiledPolicy, credentials: Credentials): Decision | Promise<Decision> {
    const decision = this.decideCredentials(policy, credentials);
    if (this.dpop === undefined || policy.token.length === 0) return decision;
    return decision instanceof Promise
      ? decision.then((d) => this.withDpopChallenge(d))
      : this.withDpopChallenge(decision);
  }

  private decideCredentials(policy: CompiledPolicy, credentials: Credentials): Decision | Promise<Decision> {
    const { peer, authorization } = credentials;
    if (peer === 'unverified') return { allow: false, error: new ShieldError('ERR_CLIENT_CERT_INVALID') };
    if (policy.token.length === 0 || authorization === undefined) return this.decideMtls(policy, peer);
    if (typeof authorization !== 'string') return { allow: false, error: authorization };
    const verifier = this.verifier;
    // Token alternatives exist only with `oidc` configured (checked at start-up); fail closed anyway.
    if (!verifier) return { allow: false, error: new ShieldError('ERR_TOKEN_ISSUER_UNKNOWN') };
    const ctx = this.verifyContextOf(peer);
    const socket = credentials.socket;
    if (socket) {
      let verified: VerifiedToken | undefined;
      try {
        verified = verifier.recall(socket, authorization, ctx);
      } catch (err) {
        return { allow: false, error: this.asShieldError(err) };
      }
      if (verified) return this.decideWithProof(policy, verified, credentials, authorization);
    }
    return this.verifyThenDecide(verifier, policy, authorization, credentials, ctx);
  }

  /** The verifier's context: the peer's certificate, and with `dpop`, the promise to check proofs. */
  private verifyContextOf(peer: PeerIdentity | undefined): VerifyContext {
    if (this.dpop === undefined) return peer ? peer.verifyContext : NO_CERTIFICATE;
    if (!peer) return DPOP_NO_CERTIFICATE;
    let ctx = this.dpopContexts.get(peer.verifyContext);
    if (ctx === undefined) {
      ctx = Object.freeze({ ...peer.verifyContext, dpop: true });
      this.dpopContexts.set(peer.verifyContext, ctx);
    }
    return ctx;
  }

  /**
   * RFC 9449 §7.1, on every request, cached token or not: a DPoP-bound token needs the `DPoP`
   * scheme and a fresh proof by its key; a token sent with the `DPoP` scheme must be DPoP-bound.
   * A plain bearer token sent as `Bearer` needs nothing more (a `DPoP` header beside it is ignored).
   */
  private decideWithProof(
    policy: CompiledPolicy,
    verified: VerifiedToken,
    credentials: Credentials,
    authorization: string,
  ): Decision | Promise<Decision> {
    const peer = credentials.peer === 'unverified' ? undefined : credentials.peer;
    const dpop = this.dpop;
    if (dpop === undefined) return this.decideWithToken(policy, verified, peer);
    const jkt = verified.dpopKeyThumbprint;
    const scheme = authorizationSchemeOf(authorization);
    if (jkt === undefined) {
      if (scheme !== 'DPoP') return this.decideWithToken(policy, verified, peer);
      const unbound = new ShieldError('ERR_DPOP_BINDING_MISMATCH', {
        detail: 'DPoP scheme, token not DPoP-bound',
      });
      return this.refusedWithToken(verified, unbound);
    }
    // A DPoP-bound token replayed as a bearer token: the point of binding it (RFC 9449 §7.2).
    if (scheme !== 'DPoP') {
      return this.refusedWithToken(verified, new ShieldError('ERR_DPOP_TOKEN_AS_BEARER'));
    }
    const request = credentials.dpop;
    if (request === undefined) {
      return this.refusedWithToken(verified, new ShieldError('ERR_DPOP_PROOF_MISSING'));
    }
    let accessToken: string;
    try {
      accessToken = extractAccessToken(authorization, this.options.oidc?.maxTokenBytes ?? 0).token;
    } catch (err) {
      return { allow: false, error: this.asShieldError(err) };
    }
    return dpop.check(request, accessToken, jkt).then(
      () => {
        const decision = this.decideWithToken(policy, verified, peer);
        const nonce = decision.allow ? dpop.currentNonce() : undefined;
        return nonce === undefined ? decision : { ...decision, dpopNonce: nonce };
      },
      (err: unknown) => this.refusedWithToken(verified, this.asShieldError(err)),
    );
  }

  /** A refusal of a valid token's request (its proof failed): the audit event names the caller. */
  private refusedWithToken(verified: VerifiedToken, error: ShieldError): Decision {
    try {
      return { allow: false, error, principal: this.identityOf(verified).principal };
    } catch {
      return { allow: false, error };
    }
  }

  /** RFC 9449 §7.1: the 401s of a route that takes tokens also offer DPoP, with `algs` (and a nonce). */
  private withDpopChallenge(decision: Decision): Decision {
    const dpop = this.dpop;
    if (dpop === undefined || decision.allow) return decision;
    const e = decision.error;
    if (e.status !== 401 || e.details.dpop !== undefined) return decision;
    const error = new ShieldError(e.code, {
      ...e.details,
      dpop: dpop.challenge(),
      message: e.message,
      ...(e.cause !== undefined ? { cause: e.cause } : {}),
    });
    return { ...decision, error };
  }

  /**
   * Ends a decision: on allow, attaches the principal, runs `user.resolve` (if configured) and
   * records the allow event; on deny (or a refused user), records the deny event and rejects with
   * the refusal. `true` at once when nothing is asynchronous.
   */
  conclude(decision: Decision, route: string, request: object): true | Promise<true> {
    if (!decision.allow) return this.refuse(decision, route);
    const user = this.options.user;
    attachPrincipal(request, decision.principal, user === undefined);
    if (user !== undefined) return this.resolveUser(user, decision.principal, route, request);
    this.record(eventOf('allow', route, decision.principal));
    return true;
  }

  /** Records the deny event of a refusal and rejects with it (never a synchronous throw). */
  refuse(decision: Extract<Decision, { allow: false }>, route: string): Promise<never> {
    this.record(eventOf('deny', route, decision.principal, decision.error));
    return Promise.reject(decision.error);
  }

  /** Hands one event to the audit sink; a throwing sink is reported, and changes no decision. */
  record(event: AuditEvent): void {
    this.telemetry.decided(event);
    try {
      this.audit.record(event);
    } catch (err) {
      this.logger.error(`audit sink failed: ${err instanceof Error ? err.name : typeof err}`);
    }
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

  private verifyThenDecide(
    verifier: TokenVerifier,
    policy: CompiledPolicy,
    authorization: string,
    credentials: Credentials,
    ctx: VerifyContext,
  ): Decision | Promise<Decision> {
    const socket: TLSSocket | undefined = credentials.socket;
    let verified: VerifiedToken | Promise<VerifiedToken>;
    try {
      // The header is read by the verifier, once. With the verified certificate, a bound token is
      // checked against it (RFC 8705 §3); without one, a bound token is refused. A new token from a
      // key already in use is answered at once; only a key lookup or an introspection is awaited.
      verified = verifier.verifyAuthorizationNow(socket, authorization, ctx);
    } catch (err) {
      return this.refusedToken(policy, credentials, err);
    }
    if (verified instanceof Promise) {
      return verified.then(
        (token) => this.decideWithProof(policy, token, credentials, authorization),
        (err: unknown) => this.refusedToken(policy, credentials, err),
      );
    }
    return this.decideWithProof(policy, verified, credentials, authorization);
  }

  /** A token the verifier refused; another scheme (`Basic`, `DPoP`) leaves the mTLS alternatives. */
  private refusedToken(policy: CompiledPolicy, credentials: Credentials, err: unknown): Decision {
    const peer = credentials.peer === 'unverified' ? undefined : credentials.peer;
    if (isShieldError(err) && err.code === 'ERR_TOKEN_MISSING') return this.decideMtls(policy, peer);
    return { allow: false, error: this.asShieldError(err) };
  }

  private decideWithToken(
    policy: CompiledPolicy,
    verified: VerifiedToken,
    peer: PeerIdentity | undefined,
  ): Decision {
    let principal: ShieldPrincipal | undefined;
    let failure: Decision;
    try {
      const identity = this.identityOf(verified);
      principal = identity.principal;
      const mismatch = matchToken(policy.token, identity.facts);
      if (!mismatch) return { allow: true, principal };
      failure = { allow: false, error: mismatch, principal };
    } catch (err) {
      return { allow: false, error: this.asShieldError(err), ...(principal ? { principal } : {}) };
    }
    return this.decideMtls(policy, peer, failure);
  }

  private decideMtls(policy: CompiledPolicy, peer: PeerIdentity | undefined, failure?: Decision): Decision {
    if (policy.mtls.length > 0 && peer) {
      const td = this.options.mtls?.trustDomains;
      if (td && (peer.trustDomain === undefined || !td.includes(peer.trustDomain))) {
        return failure ?? { allow: false, error: new ShieldError('ERR_CLIENT_CERT_INVALID') };
      }
      const mismatch = matchMtls(policy.mtls, peer);
      if (!mismatch) return { allow: true, principal: peer.principal };
      failure ??= { allow: false, error: mismatch, principal: peer.principal };
    }
    if (failure) return failure;
    return {
      allow: false,
      error: new ShieldError(policy.token.length > 0 ? 'ERR_TOKEN_MISSING' : 'ERR_CLIENT_CERT_MISSING'),
    };
  }

  private identityOf(verified: VerifiedToken): TokenIdentity {
    let identity = this.identities.get(verified);
    if (identity === undefined) {
      identity = tokenIdentityOf(verified, this.options.roleClaimPath);
      this.identities.set(verified, identity);
    }
    return identity;
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
}

/**
 * What a request presents for DPoP: the single `DPoP` header (Node joins repeated unknown headers
 * with `, `, so repeats are found in `rawHeaders`), the method and the request-target as received
 * (Express's `originalUrl`, else the raw request's `url`), and the raw request (one check per
 * request, however many times it is decided).
 */
function dpopRequestOf(request: object): DpopRequest {
  const r = request as RequestLike;
  const raw: { method?: unknown; url?: unknown } =
    typeof r.raw === 'object' && r.raw !== null ? r.raw : (request as { method?: unknown; url?: unknown });
  const header = r.headers?.['dpop'];
  let proof: DpopRequest['proof'];
  if (header !== undefined) {
    proof =
      typeof header !== 'string' || repeatsDpopHeader(rawHeadersOf(request))
        ? new ShieldError('ERR_DPOP_PROOF_INVALID', { detail: 'DPoP header repeated' })
        : header;
  }
  const target =
    typeof r.originalUrl === 'string' ? r.originalUrl : typeof raw.url === 'string' ? raw.url : '';
  const method = typeof raw.method === 'string' ? raw.method : '';
  return { proof, method, target, request: raw as object };
}
