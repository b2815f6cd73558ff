import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { ResolvedSamlOptions } from './saml-options.interface.js';
import type { SamlPrincipal } from './saml-principal.interface.js';

/** RFC 6749 §5.1 successful token response, as served by the ACS and the token endpoint. */
export interface SamlAccessTokenResponse {
  readonly access_token: string;
  readonly token_type: 'Bearer';
  /** Seconds until the token expires. */
  readonly expires_in: number;
  /** Space-delimited scopes granted (RFC 6749 §3.3), when any. */
  readonly scope?: string;
}

/** A public key set as served at `GET /saml/jwks` (RFC 7517 §5). */
export interface SamlJwks {
  readonly keys: readonly JWK[];
}

/**
 * Issues the short-lived local access tokens (RFC 9068 `at+jwt`, ES256) that a verified SAML
 * assertion is exchanged for, and publishes the public key. The private key never leaves this
 * object: not in logs, not in the key set.
 */
export class SamlTokenSigner {
  /** The public key set (`kid` = RFC 7638 thumbprint); never holds private members. */
  readonly jwks: SamlJwks;
  readonly kid: string;

  private constructor(
    private readonly key: KeyObject | CryptoKey,
    publicJwk: JWK,
    private readonly tokens: ResolvedSamlOptions['tokens'],
    private readonly clientId: string,
  ) {
    this.kid = publicJwk.kid as string;
    this.jwks = Object.freeze({ keys: Object.freeze([Object.freeze(publicJwk)]) });
  }

  /** `iss` of the tokens. */
  get issuer(): string {
    return this.tokens.issuer;
  }

  /** `aud` of the tokens. */
  get audience(): readonly string[] {
    return this.tokens.audience;
  }

  /** Loads (or, for `'ephemeral'`, generates) the signing key: at start-up, once. */
  static async create(options: ResolvedSamlOptions): Promise<SamlTokenSigner> {
    const tokens = options.tokens;
    let privateKey: KeyObject | CryptoKey;
    let publicJwk: JWK;
    if (tokens.signingKey === 'ephemeral') {
      const pair = await generateKeyPair('ES256', { extractable: false });
      privateKey = pair.privateKey;
      publicJwk = await exportJWK(pair.publicKey);
    } else {
      privateKey = tokens.signingKey;
      publicJwk = await exportJWK(createPublicKey(tokens.signingKey));
    }
    // Only the public members, whatever exportJWK returns.
    const jwk: JWK = { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x, y: publicJwk.y };
    jwk.kid = await calculateJwkThumbprint(jwk, 'sha256');
    jwk.alg = 'ES256';
    jwk.use = 'sig';
    return new SamlTokenSigner(privateKey, jwk, tokens, options.serviceProvider.entityId);
  }

  /**
   * Signs an access token for a verified principal. `scopes` narrows the granted scopes (an RFC
   * 6749 §3.3 `scope` request); it can never add one.
   */
  async issue(
    principal: SamlPrincipal,
    requestedScopes?: readonly string[],
  ): Promise<SamlAccessTokenResponse> {
    const now = Math.floor(Date.now() / 1000);
    let exp = now + this.tokens.ttlSeconds;
    // The IdP's session limit caps the token (SAML core §2.7.2 SessionNotOnOrAfter).
    if (principal.sessionNotOnOrAfter !== undefined) {
      exp = Math.min(exp, Math.floor(principal.sessionNotOnOrAfter.getTime() / 1000));
    }
    const scopes =
      requestedScopes === undefined
        ? principal.scopes
        : principal.scopes.filter((s) => requestedScopes.includes(s));
    const claims: Record<string, unknown> = {
      client_id: this.clientId,
      amr: ['saml'],
      idp: principal.issuer,
    };
    if (scopes.length > 0) claims['scope'] = scopes.join(' ');
    if (principal.roles.length > 0) claims['roles'] = [...principal.roles];
    if (principal.authnInstant !== undefined)
      claims['auth_time'] = Math.floor(principal.authnInstant.getTime() / 1000);
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: this.kid })
      .setIssuer(this.tokens.issuer)
      .setAudience(
        this.tokens.audience.length === 1 ? (this.tokens.audience[0] as string) : [...this.tokens.audience],
      )
      .setSubject(principal.subject)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.key);
    const response: { access_token: string; token_type: 'Bearer'; expires_in: number; scope?: string } = {
      access_token: jwt,
      token_type: 'Bearer',
      expires_in: Math.max(0, exp - now),
    };
    if (scopes.length > 0) response.scope = scopes.join(' ');
    return response;
  }
}
