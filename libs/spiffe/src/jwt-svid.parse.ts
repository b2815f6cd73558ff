import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { ShieldError } from '@inference-shield/core/internal';
import { parseSpiffeId } from '@inference-shield/core/internal';

/** A JWT-SVID fetched for an audience: what a token exchange takes as its subject token. */
export interface JwtSvid {
  /** The JWS compact serialization. A bearer credential: never log it. */
  readonly token: string;
  /** Its `sub`: the workload's SPIFFE ID. */
  readonly spiffeId: string;
  /** Its `exp`. */
  readonly expiresAt: Date;
  /** Its `iat`, when present. */
  readonly issuedAt: Date | undefined;
  /** The audiences it was asked for (all of them are in its `aud`). */
  readonly audience: readonly string[];
  /** The operator's hint for this SVID, when the agent gave one. */
  readonly hint: string | undefined;
}

/** A JWT bundle: the JWKS of one trust domain's JWT-SVID signing keys. */
export interface JwtBundle {
  /** The trust domain, without `spiffe://`. */
  readonly trustDomain: string;
  /** Its public keys (`use` absent or `jwt-svid`), each checked to be a usable public JWK. */
  readonly keys: readonly JsonWebKey[];
}

/** SPIRE's JWT-SVIDs are well under 2 KiB; a bearer token of tens of KiB is refused. */
export const MAX_JWT_SVID_BYTES = 16 * 1024;
/** A JWKS document of one trust domain. */
const MAX_JWKS_BYTES = 64 * 1024;
const MAX_JWKS_KEYS = 64;
const MAX_JWT_BUNDLES = 64;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function refuseSvid(message: string, cause?: unknown): never {
  throw new ShieldError('ERR_SPIFFE_SVID_INVALID', { message: `JWT-SVID refused: ${message}`, cause });
}

function jsonPart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (err) {
    return refuseSvid(`its ${what} is not JSON`, err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    refuseSvid(`its ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Check a JWT-SVID the agent returned (JWT-SVID §2, §3): a JWS compact serialization of bounded
 * size; a header with an asymmetric `alg` (never `none`, never HMAC); `sub` the SPIFFE ID the agent
 * announced; `aud` holding every requested audience; a numeric `exp` in the future. The signature is
 * not checked here (the token comes from the local agent; its recipient checks it).
 */
export function parseJwtSvid(
  message: { readonly spiffe_id?: unknown; readonly svid?: unknown; readonly hint?: unknown },
  audience: readonly string[],
  now: number,
): JwtSvid {
  const token = message.svid;
  if (typeof token !== 'string' || token.length === 0) refuseSvid('the token is missing');
  if (token.length > MAX_JWT_SVID_BYTES) refuseSvid(`the token is longer than ${MAX_JWT_SVID_BYTES} bytes`);
  if (!COMPACT_JWS.test(token)) refuseSvid('the token is not a JWS compact serialization');
  const [h = '', p = ''] = token.split('.');
  const header = jsonPart(h, 'header');
  const alg = header.alg;
  if (typeof alg !== 'string' || !/^(?:RS|PS|ES)(?:256|384|512)$|^EdDSA$/.test(alg)) {
    refuseSvid('its alg is not an asymmetric JWS algorithm');
  }
  const payload = jsonPart(p, 'payload');
  const sub = payload.sub;
  const parsed = typeof sub === 'string' ? parseSpiffeId(sub) : undefined;
  if (typeof sub !== 'string' || parsed === undefined || parsed.path === '')
    refuseSvid('its sub is not a workload SPIFFE ID');
  if (message.spiffe_id !== sub) refuseSvid('its sub is not the SPIFFE ID the agent announced');
  const aud = payload.aud;
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audience.every((a) => auds.includes(a))) refuseSvid('its aud lacks a requested audience');
  const exp = payload.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) refuseSvid('its exp is missing or not a number');
  if (exp * 1000 <= now) refuseSvid('it has already expired');
  const iat = payload.iat;
  const hint = message.hint;
  return Object.freeze({
    token,
    spiffeId: sub,
    expiresAt: new Date(exp * 1000),
    issuedAt: typeof iat === 'number' && Number.isFinite(iat) ? new Date(iat * 1000) : undefined,
    audience: Object.freeze([...audience]),
    hint: typeof hint === 'string' && hint.length > 0 ? hint.slice(0, 256) : undefined,
  });
}

function refuseBundle(message: string, cause?: unknown): never {
  throw new ShieldError('ERR_SPIFFE_SVID_INVALID', {
    message: `JWT bundle update refused: ${message}`,
    cause,
  });
}

/** The trust domain a bundle map key names: `spiffe://example.org` or `example.org`. */
function trustDomainOfKey(key: string): string | undefined {
  const parsed = parseSpiffeId(key.startsWith('spiffe://') ? key : `spiffe://${key}`);
  return parsed !== undefined && parsed.path === '' ? parsed.trustDomain : undefined;
}

function jwksOf(trustDomain: string, data: unknown): JwtBundle {
  if (!(data instanceof Uint8Array) || data.length === 0)
    refuseBundle(`the bundle of ${trustDomain} is empty`);
  if (data.length > MAX_JWKS_BYTES)
    refuseBundle(`the bundle of ${trustDomain} is larger than ${MAX_JWKS_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch (err) {
    return refuseBundle(`the bundle of ${trustDomain} is not JSON`, err);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) refuseBundle(`the bundle of ${trustDomain} is not a JWKS document`);
  if (keys.length > MAX_JWKS_KEYS)
    refuseBundle(`the bundle of ${trustDomain} holds more than ${MAX_JWKS_KEYS} keys`);
  const usable: JsonWebKey[] = [];
  keys.forEach((key: unknown, i) => {
    if (typeof key !== 'object' || key === null || Array.isArray(key)) {
      refuseBundle(`key #${i + 1} of the bundle of ${trustDomain} is not a JWK`);
    }
    const jwk = key as JsonWebKey & { use?: unknown; kid?: unknown };
    // A SPIFFE bundle also lists X.509 authorities (`use: x509-svid`): not JWT signing keys.
    if (jwk.use !== undefined && jwk.use !== 'jwt-svid') return;
    // A private or symmetric key has no place in a trust bundle.
    if (jwk.d !== undefined || jwk.kty === 'oct')
      refuseBundle(`key #${i + 1} of the bundle of ${trustDomain} is not a public key`);
    try {
      createPublicKey({ key: jwk, format: 'jwk' });
    } catch (err) {
      refuseBundle(`key #${i + 1} of the bundle of ${trustDomain} is not a usable public JWK`, err);
    }
    usable.push(Object.freeze({ ...jwk }));
  });
  return Object.freeze({ trustDomain, keys: Object.freeze(usable) });
}

/**
 * Check a `JWTBundlesResponse` (Workload API §6.2, SPIFFE Trust Domain and Bundle §4): keyed by
 * trust domain, each a JWKS document of public keys, bounded in count and size. Throws
 * `ERR_SPIFFE_SVID_INVALID` naming the trust domain and the problem.
 */
export function parseJwtBundles(response: { readonly bundles?: unknown }): ReadonlyMap<string, JwtBundle> {
  const bundles = response.bundles;
  if (typeof bundles !== 'object' || bundles === null) refuseBundle('the response holds no bundles');
  const entries = Object.entries(bundles as Record<string, unknown>);
  if (entries.length === 0) refuseBundle('the response holds no bundles');
  if (entries.length > MAX_JWT_BUNDLES) refuseBundle(`more than ${MAX_JWT_BUNDLES} bundles`);
  const out = new Map<string, JwtBundle>();
  for (const [name, data] of entries) {
    const td = trustDomainOfKey(name);
    if (td === undefined) refuseBundle('a bundle is keyed by an invalid trust domain ID');
    if (out.has(td)) refuseBundle(`the trust domain ${td} appears twice`);
    out.set(td, jwksOf(td, data));
  }
  return out;
}
