import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign as cryptoSign,
  type KeyObject,
} from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { isShieldError, readBoundedFile, ShieldError } from '@inference-shield/core/internal';
import type { CallerIdentity, ResolvedCallerAssertionOptions } from './upstream-options.interface.js';

/** The public key set an upstream uses to verify caller assertions (RFC 7517). */
export interface CallerAssertionJwks {
  readonly keys: readonly JWK[];
}

/** Media type of the assertion (RFC 8725 §3.11: explicit typing keeps it from passing as another JWT). */
export const CALLER_ASSERTION_TYPE = 'shield-caller+jwt';

// Caller values come from verified tokens but are still bounded: a huge `sub` or a thousand
// scopes must not turn into a huge header on every upstream call.
const MAX_CLAIM_LENGTH = 1024;
const MAX_SCOPES = 64;

/**
 * Signs short-lived ES256 assertions of the verified caller for an upstream: `iss` = this service,
 * `sub` = the caller, `caller_iss`, `scope`, `aud` = the upstream origin, `exp` ≤ 60 s, a fresh
 * `jti`. The upstream verifies them with {@link jwks}; it never has to trust a bare header.
 */
export class CallerAssertionSigner {
  /** The encoded protected header, the same for every assertion: `base64url(header) + "."`. */
  private readonly headerSegment: string;

  private constructor(
    private readonly options: ResolvedCallerAssertionOptions,
    private readonly privateKey: KeyObject,
    kid: string,
    private readonly publicJwks: CallerAssertionJwks,
  ) {
    const header = JSON.stringify({ alg: 'ES256', typ: CALLER_ASSERTION_TYPE, kid });
    this.headerSegment = `${Buffer.from(header, 'utf8').toString('base64url')}.`;
  }

  /** Load the key (PKCS#8 EC P-256 PEM) or generate an ephemeral one. Throws at start-up on a bad key. */
  static async create(options: ResolvedCallerAssertionOptions): Promise<CallerAssertionSigner> {
    let privateKey: KeyObject;
    if (options.privateKeyFile !== undefined) {
      privateKey = loadEcKey(options.privateKeyFile);
    } else {
      // Ephemeral: the public half is only known through jwks(), so upstreams must fetch it from us.
      privateKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    }
    const jwk = await exportJWK(createPublicKey(privateKey));
    const kid = await calculateJwkThumbprint(jwk, 'sha256');
    const jwks = Object.freeze({
      keys: Object.freeze([Object.freeze({ ...jwk, kid, alg: 'ES256', use: 'sig' })]),
    });
    return new CallerAssertionSigner(options, privateKey, kid, jwks);
  }

  /** Header name the assertion goes in (lowercase). */
  get header(): string {
    return this.options.header;
  }

  /** The public key set (one ES256 key) for the upstream's verifier. */
  jwks(): CallerAssertionJwks {
    return this.publicJwks;
  }

  /** The caller of an inbound request, as the configured resolver reports it. */
  callerOf(req: Parameters<ResolvedCallerAssertionOptions['caller']>[0]): CallerIdentity | undefined {
    try {
      return this.options.caller(req);
    } catch (err) {
      // The application's resolver failed: no caller can be asserted. A refusal of ours (403),
      // not an upstream failure (502), and never the resolver's message.
      throw new ShieldError('ERR_CALLER_NOT_ALLOWED', { detail: 'caller resolver failed', cause: err });
    }
  }

  /** Sign an assertion of `caller` for the upstream at `audience` (its origin). */
  // Async for callers written against the jose version (and a future key held elsewhere).
  async sign(caller: CallerIdentity, audience: string): Promise<string> {
    const subject = bounded(caller.subject, 'subject');
    const claims: Record<string, unknown> = {};
    if (caller.issuer !== undefined) claims.caller_iss = bounded(caller.issuer, 'issuer');
    if (caller.method !== undefined) claims.caller_method = bounded(caller.method, 'method');
    if (caller.scopes !== undefined && caller.scopes.length > 0) {
      if (caller.scopes.length > MAX_SCOPES)
        throw new ShieldError('ERR_CALLER_NOT_ALLOWED', { detail: 'too many scopes to assert' });
      claims.scope = bounded(caller.scopes.join(' '), 'scopes');
    }
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      ...claims,
      iss: this.options.issuer,
      sub: subject,
      aud: audience,
      iat: now,
      exp: now + this.options.ttlSeconds,
      jti: randomUUID(),
    };
    // RFC 7515 compact form, ES256 (RFC 7518 §3.4: the 64-byte r || s, not DER). Signed with
    // node:crypto directly: jose's WebCrypto path costs two to three times as much per assertion,
    // and this runs once per proxied request.
    const signingInput =
      this.headerSegment + Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
    const signature = cryptoSign('sha256', Buffer.from(signingInput, 'ascii'), {
      key: this.privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    return `${signingInput}.${signature.toString('base64url')}`;
  }
}

function bounded(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_CLAIM_LENGTH) {
    throw new ShieldError('ERR_CALLER_NOT_ALLOWED', { detail: `caller ${what} cannot be asserted` });
  }
  return value;
}

/** A PEM private key is a few hundred bytes; refuse to read a huge or endless file. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * Read the signing key; a TypeError at start-up (a bad option, as the resolver reports the others)
 * names the file and never quotes it.
 */
function loadEcKey(path: string): KeyObject {
  let pem: Buffer;
  try {
    pem = readBoundedFile(path, 'private key', MAX_KEY_FILE_BYTES);
  } catch (err) {
    if (!isShieldError(err)) throw err;
    throw new TypeError(`"callerAssertion.privateKeyFile": ${err.message}`, { cause: err });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new TypeError(
      `"callerAssertion.privateKeyFile": ${path} does not hold an unencrypted PEM private key`,
    );
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError(`"callerAssertion.privateKeyFile": ${path} must hold an EC P-256 key (ES256)`);
  }
  return key;
}
