import type { KeyObject } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { isShieldError, ShieldError } from '@inference-shield/core';
import type { Algorithm } from 'jsonwebtoken';
import { Strategy } from 'passport-jwt';
import { IDENTITY_OPTIONS, SHIELD_JWT_STRATEGY, TOKEN_VERIFIER } from './identity.constants.js';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import { peerStateOf } from './peer-certificate.js';
import { tokenIdentityOf } from './principal.factory.js';
import type { ShieldPrincipal } from './principal.interface.js';
import {
  extractBearerToken,
  rawHeadersOf,
  repeatsAuthorization,
  type TokenVerifier,
  type VerifiedToken,
} from './tokens/index.js';

/** Where the strategy leaves, on the request, what passport's callbacks cannot carry. */
const VERIFIED = Symbol('shield.passport.verified');
const EXTRACT_ERROR = Symbol('shield.passport.extract-error');

interface PassportRequest {
  headers?: Record<string, unknown>;
  [VERIFIED]?: VerifiedToken;
  [EXTRACT_ERROR]?: ShieldError;
}

// The algorithms jsonwebtoken (under passport-jwt) can check; EdDSA tokens fail there (401).
const JSONWEBTOKEN_ALGORITHMS: ReadonlySet<string> = new Set([
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
]);

// One PEM export per key, not per request.
const exported = new WeakMap<KeyObject, string | Buffer>();
function exportKey(key: KeyObject): string | Buffer {
  let out = exported.get(key);
  if (out === undefined) {
    out = key.type === 'secret' ? key.export() : key.export({ type: 'spki', format: 'pem' }).toString();
    exported.set(key, out);
  }
  return out;
}

/** The refusal a passport failure stands for: ours when we raised it, else mapped from jsonwebtoken. */
export function passportFailureToShieldError(request: object, err: unknown, info: unknown): ShieldError {
  if (isShieldError(err)) return err;
  if (isShieldError(info)) return info;
  const stashed = (request as PassportRequest)[EXTRACT_ERROR];
  if (stashed) return stashed;
  const failure = err ?? info;
  const name = failure instanceof Error ? failure.name : undefined;
  const message = failure instanceof Error ? failure.message : '';
  if (name === 'TokenExpiredError') return new ShieldError('ERR_TOKEN_EXPIRED');
  if (name === 'NotBeforeError') return new ShieldError('ERR_TOKEN_NOT_YET_VALID');
  if (name === 'JsonWebTokenError' && message === 'invalid algorithm')
    return new ShieldError('ERR_TOKEN_ALG_NOT_ALLOWED');
  if (name === 'JsonWebTokenError' && message === 'invalid signature')
    return new ShieldError('ERR_TOKEN_SIGNATURE_INVALID');
  if (failure instanceof Error && message === 'No auth token') return new ShieldError('ERR_TOKEN_MISSING');
  return new ShieldError('ERR_TOKEN_MALFORMED');
}

/**
 * `passport-jwt` strategy `shield-jwt` for applications built on `@nestjs/passport`. Its key
 * provider runs the full Shield verification first (every rule: `crit`, `b64`, duplicate JSON
 * members, `exp` and `sub` required, issuer's own keys, RFC 8705 binding...) and only then hands
 * jsonwebtoken the very key that verified, so jsonwebtoken's gaps can no longer let a token in.
 * Use it through `ShieldPassportGuard` (or `@UsePassport()`), which maps failures to our 401s.
 */
@Injectable()
export class ShieldJwtStrategy extends PassportStrategy(Strategy, SHIELD_JWT_STRATEGY) {
  constructor(
    @Inject(TOKEN_VERIFIER) verifier: TokenVerifier | null,
    @Inject(IDENTITY_OPTIONS) options: ResolvedIdentityOptions,
  ) {
    const tokens = options.oidc;
    if (!verifier || !tokens) {
      throw new TypeError('ShieldPassportModule needs IdentityModule.forRoot({ oidc: { issuers: [...] } })');
    }
    const algorithms = [...new Set(tokens.issuers.flatMap((i) => i.algorithms))].filter((a) =>
      JSONWEBTOKEN_ALGORITHMS.has(a),
    ) as Algorithm[];
    const clockTolerance = Math.max(...tokens.issuers.map((i) => i.clockToleranceSeconds));
    super({
      // Our extractor, not ExtractJwt's: header only (RFC 6750 §2.1), size-bounded before any parse.
      jwtFromRequest: (request: PassportRequest): string | null => {
        const header = request.headers?.authorization;
        if (header === undefined) return null;
        try {
          // Several Authorization headers: Node kept the first one only (see repeatsAuthorization).
          if (typeof header !== 'string' || repeatsAuthorization(rawHeadersOf(request))) {
            throw new ShieldError('ERR_TOKEN_MALFORMED');
          }
          return extractBearerToken(header, tokens.maxTokenBytes);
        } catch (err) {
          request[EXTRACT_ERROR] = isShieldError(err) ? err : new ShieldError('ERR_TOKEN_MALFORMED');
          return null;
        }
      },
      secretOrKeyProvider: (
        request: PassportRequest,
        rawJwt: unknown,
        done: (err: unknown, key?: string | Buffer) => void,
      ) => {
        if (typeof rawJwt !== 'string') return done(new ShieldError('ERR_TOKEN_MALFORMED'));
        const peer = peerStateOf(request);
        verifier
          .verifyWithKey(
            rawJwt,
            peer.state === 'verified' ? { clientCertificate: peer.identity.certificate } : {},
          )
          .then(
            ({ token, key }) => {
              request[VERIFIED] = token;
              done(null, exportKey(key));
            },
            (err: unknown) =>
              done(isShieldError(err) ? err : new ShieldError('ERR_TOKEN_MALFORMED', { cause: err })),
          );
      },
      algorithms,
      jsonWebTokenOptions: { clockTolerance },
      passReqToCallback: true,
    });
    this.roleClaimPath = options.roleClaimPath;
  }

  private readonly roleClaimPath: readonly string[];

  /** Called by passport-jwt after jsonwebtoken agreed: the principal is built from our verification. */
  validate(request: PassportRequest, payload: unknown): ShieldPrincipal {
    const verified = request[VERIFIED];
    // jsonwebtoken verified the same string our verifier did; refuse if that ever diverges.
    if (
      !verified ||
      typeof payload !== 'object' ||
      payload === null ||
      (payload as { sub?: unknown }).sub !== verified.subject
    ) {
      throw new ShieldError('ERR_TOKEN_MALFORMED');
    }
    return tokenIdentityOf(verified, this.roleClaimPath).principal;
  }
}
