import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { codeOf, ShieldError } from '@inference-shield/core/internal';
import { buildAuthnRequest } from './authn-request.js';
import type { SamlAuditSink } from './saml-audit.js';
import { buildSpMetadata } from './saml-metadata.js';
import type { ResolvedSamlIdentityProvider, ResolvedSamlOptions } from './saml-options.interface.js';
import type { SamlPrincipal } from './saml-principal.interface.js';
import { MemorySamlReplayCache } from './saml-replay-cache.js';
import { MemorySamlRequestStore } from './saml-request-store.js';
import type { SamlAccessTokenResponse } from './saml-token.signer.js';
import { SamlTokenSigner } from './saml-token.signer.js';
import { SamlValidator } from './saml-validator.js';
import { SAML2_BEARER_GRANT_TYPE, SAML_AUDIT_SINK, SAML_OPTIONS } from './saml.constants.js';

/** SAML bindings §3.4.3 / §3.5.3: RelayState MUST NOT exceed 80 bytes. */
const RELAY_STATE = /^[\x20-\x7E]{1,80}$/;
/** RFC 6749 §3.3 scope: space-delimited scope tokens. */
const SCOPE_PARAM = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}( [\x21\x23-\x5B\x5D-\x7E]{1,128}){0,63}$/;

/** What a successful ACS post answers: the RFC 6749 §5.1 token response, plus the RelayState. */
export interface SamlAcsResult {
  readonly principal: SamlPrincipal;
  readonly token: SamlAccessTokenResponse;
  readonly relayState: string | undefined;
}

/**
 * The two ways in (browser SSO and the RFC 7522 grant) and the login redirect, with one audit
 * event per decision. The controller only moves request fields in and responses out.
 */
@Injectable()
export class SamlService implements OnModuleInit {
  /** The SP metadata document, built once. */
  readonly metadata: string;
  private readonly logger = new Logger('ShieldSaml');
  private readonly idpsByName: ReadonlyMap<string, ResolvedSamlIdentityProvider>;

  constructor(
    @Inject(SAML_OPTIONS) private readonly options: ResolvedSamlOptions,
    private readonly validator: SamlValidator,
    private readonly signer: SamlTokenSigner,
    @Inject(SAML_AUDIT_SINK) private readonly audit: SamlAuditSink,
  ) {
    this.metadata = buildSpMetadata(options);
    this.idpsByName = new Map(options.identityProviders.map((idp) => [idp.name, idp]));
  }

  onModuleInit(): void {
    if (this.options.replayCache instanceof MemorySamlReplayCache) {
      // A per-process cache lets a replay through on another replica behind a load balancer.
      this.logger.warn(
        'SAML replay cache is in memory: with more than one replica, configure RedisSamlReplayCache',
      );
    }
    if (this.options.requestStore instanceof MemorySamlRequestStore) {
      this.logger.warn(
        'SAML request store is in memory: with more than one replica, configure RedisSamlRequestStore',
      );
    }
  }

  /** Starts an SP-initiated login: records the request, returns the IdP redirect URL. */
  async login(idpParam: unknown, relayStateParam: unknown): Promise<string> {
    let idp: ResolvedSamlIdentityProvider | undefined;
    if (idpParam === undefined && this.idpsByName.size === 1) {
      idp = this.options.identityProviders[0];
    } else if (typeof idpParam === 'string') {
      idp = this.idpsByName.get(idpParam);
    }
    if (idp === undefined) throw new ShieldError('ERR_BAD_REQUEST', { detail: 'unknown or missing idp' });
    const relayState = this.relayState(relayStateParam, 'ERR_BAD_REQUEST');
    const expiresAt = new Date(Date.now() + this.options.loginRequestTtlMs);
    const store = this.options.requestStore;
    if (typeof store.mint === 'function') {
      // Nothing stored for an anonymous request: a flood of logins cannot push out real ones.
      return buildAuthnRequest(this.options, idp, relayState, store.mint(idp.name, expiresAt)).redirectUrl;
    }
    const request = buildAuthnRequest(this.options, idp, relayState);
    await store.save(request.id, idp.name, expiresAt);
    return request.redirectUrl;
  }

  /** Browser SSO: a `SAMLResponse` posted to the ACS, exchanged for a local access token. */
  async acs(samlResponse: unknown, relayStateParam: unknown): Promise<SamlAcsResult> {
    const route = 'POST /saml/acs';
    try {
      const relayState = this.relayState(relayStateParam, 'ERR_SAML_MALFORMED');
      const principal = await this.validator.validateSamlResponse(samlResponse);
      const token = await this.signer.issue(principal);
      this.allow(route, principal, token);
      return { principal, token, relayState };
    } catch (err) {
      this.deny(route, err);
      throw err;
    }
  }

  /** RFC 7522 §2.1: `grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer&assertion=...[&scope=...]`. */
  async grant(grantType: unknown, assertion: unknown, scope: unknown): Promise<SamlAccessTokenResponse> {
    const route = 'POST /oauth/token';
    try {
      if (typeof grantType !== 'string')
        throw new ShieldError('ERR_SAML_GRANT_INVALID', { detail: 'grant_type' });
      if (grantType !== SAML2_BEARER_GRANT_TYPE) throw new ShieldError('ERR_SAML_GRANT_TYPE_UNSUPPORTED');
      // RFC 6749 §3.2: a parameter sent twice arrives as an array and is refused here.
      if (typeof assertion !== 'string' || assertion.length === 0) {
        throw new ShieldError('ERR_SAML_GRANT_INVALID', { detail: 'assertion' });
      }
      let requested: string[] | undefined;
      if (scope !== undefined) {
        if (typeof scope !== 'string' || !SCOPE_PARAM.test(scope)) {
          throw new ShieldError('ERR_SAML_GRANT_INVALID', { detail: 'scope' });
        }
        requested = scope.split(' ');
      }
      // A scope the assertion does not give is refused (invalid_scope), the assertion left unspent.
      const principal = await this.validator.validateSamlBearerAssertion(assertion, requested);
      const token = await this.signer.issue(principal, requested);
      this.allow(route, principal, token);
      return token;
    } catch (err) {
      this.deny(route, err);
      throw err;
    }
  }

  private relayState(value: unknown, code: 'ERR_BAD_REQUEST' | 'ERR_SAML_MALFORMED'): string | undefined {
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string' || !RELAY_STATE.test(value))
      throw new ShieldError(code, { detail: 'RelayState' });
    return value;
  }

  private allow(route: string, principal: SamlPrincipal, token: SamlAccessTokenResponse): void {
    this.record({
      time: new Date().toISOString(),
      decision: 'allow',
      route,
      method: 'saml',
      subject: principal.subject,
      issuer: principal.issuer,
      scopes: token.scope === undefined ? [] : token.scope.split(' '),
    });
  }

  private deny(route: string, err: unknown): void {
    this.record({
      time: new Date().toISOString(),
      decision: 'deny',
      route,
      method: 'saml',
      code: codeOf(err),
    });
  }

  private record(event: Parameters<SamlAuditSink['record']>[0]): void {
    try {
      this.audit.record(event);
    } catch (err) {
      this.logger.error(`audit sink failed: ${err instanceof Error ? err.name : typeof err}`);
    }
  }
}
