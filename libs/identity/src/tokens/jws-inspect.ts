import { deepFreeze, ShieldError } from '@inference-shield/core/internal';
import { parseStrictJson, StrictJsonError } from './strict-json.js';

/**
 * The cheap, crypto-free checks every token passes before a key is looked up: the compact form,
 * a strict decode of the header and the claims, and the header policy. They run on attacker
 * bytes, so each one refuses with a typed code and never quotes the input.
 */

/** A JOSE header that passed {@link inspectCompactJws}. */
export interface JwsHeader {
  readonly alg: string;
  readonly kid?: string;
  readonly typ?: string;
  readonly [name: string]: unknown;
}

/** The three segments of a compact JWS and its decoded, policy-checked header. */
export interface InspectedJws {
  readonly header: JwsHeader;
  readonly headerSegment: string;
  readonly payloadSegment: string;
  readonly signatureSegment: string;
  /** `header.payload`: the bytes the signature covers (ASCII, as it passed the segment checks). */
  readonly signingInput: string;
}

/** Every algorithm this project can verify. Anything else (including `none`) is refused. */
export const SUPPORTED_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'HS256',
  'HS384',
  'HS512',
] as const;

/** A JWS algorithm name this project can verify. */
export type SupportedAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

const SUPPORTED = new Set<string>(SUPPORTED_ALGORITHMS);

/**
 * Header parameters we refuse outright:
 * - `crit` (RFC 7515 §4.1.11): we implement no extension, and a `crit` naming a registered
 *   claim is a known bypass in libraries that ignore it;
 * - `b64` (RFC 7797): an unencoded payload is not a JWT;
 * - `jku`, `x5u`, `jwk`, `x5c` (RFC 7515 §4.1.2-6): the token must never choose its own key nor
 *   make us fetch a URL; only the configured key set counts;
 * - JWE members (`enc`, `zip`, `epk`, ...): a JWE is not a signed access token.
 */
const REFUSED_HEADER_PARAMS = [
  'crit',
  'b64',
  'jku',
  'x5u',
  'jwk',
  'x5c',
  'enc',
  'zip',
  'epk',
  'apu',
  'apv',
  'iv',
  'tag',
  'p2s',
  'p2c',
] as const;

/** A `kid` is a lookup key; a very long one is noise from an attacker, not an IdP. */
const MAX_KID_LENGTH = 256;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Checks one base64url segment strictly (RFC 7515 §2: no padding, no whitespace, no other
 * characters) and canonically: the unused low bits of the last character must be zero, so one
 * token has exactly one spelling (another spelling of the same bytes would be another cache key
 * for a token already verified, and lenient decoders disagree on such input).
 */
export function assertBase64urlSegment(segment: string): void {
  const rest = segment.length % 4;
  if (rest === 1 || !BASE64URL.test(segment)) throw new ShieldError('ERR_TOKEN_MALFORMED');
  if (rest !== 0) {
    const last = ALPHABET.indexOf(segment.charAt(segment.length - 1));
    if ((last & (rest === 2 ? 0x0f : 0x03)) !== 0) throw new ShieldError('ERR_TOKEN_MALFORMED');
  }
}

/** Decodes a segment that passed {@link assertBase64urlSegment}. */
export function decodeBase64urlSegment(segment: string): Buffer {
  assertBase64urlSegment(segment);
  return Buffer.from(segment, 'base64url');
}

function decodeJsonObjectSegment(segment: string): Record<string, unknown> {
  const bytes = decodeBase64urlSegment(segment);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (cause) {
    throw new ShieldError('ERR_TOKEN_MALFORMED', { cause, detail: 'not UTF-8' });
  }
  let value: unknown;
  try {
    value = parseStrictJson(text);
  } catch (cause) {
    if (cause instanceof StrictJsonError && cause.kind === 'duplicate') {
      throw new ShieldError('ERR_TOKEN_DUPLICATE_KEY', { cause });
    }
    throw new ShieldError('ERR_TOKEN_MALFORMED', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ShieldError('ERR_TOKEN_MALFORMED', { detail: 'not a JSON object' });
  }
  return value as Record<string, unknown>;
}

/**
 * Size cap, compact form and header policy, in that order (cheapest first). The size cap comes
 * before anything reads the token, so a 100 KB header costs one length comparison.
 * Does not look at the payload; see {@link decodeClaims}.
 */
export function inspectCompactJws(token: string, maxTokenBytes: number): InspectedJws {
  if (typeof token !== 'string' || token.length === 0) throw new ShieldError('ERR_TOKEN_MALFORMED');
  if (token.length > maxTokenBytes) throw new ShieldError('ERR_TOKEN_TOO_LARGE');
  // Compact serialization only (RFC 7515 §7.1): exactly three segments. Five is a JWE, one with
  // a leading `{` is the JSON serialization; both are refused here.
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (first <= 0 || second < 0 || token.indexOf('.', second + 1) !== -1) {
    throw new ShieldError('ERR_TOKEN_MALFORMED');
  }
  const headerSegment = token.slice(0, first);
  const payloadSegment = token.slice(first + 1, second);
  const signatureSegment = token.slice(second + 1);
  // An empty signature is `alg: none` in disguise, or a stripped signature.
  if (signatureSegment.length === 0) throw new ShieldError('ERR_TOKEN_MALFORMED');
  assertBase64urlSegment(payloadSegment);
  assertBase64urlSegment(signatureSegment);

  let header = acceptedHeaders.get(headerSegment);
  if (header === undefined) {
    const decoded = decodeJsonObjectSegment(headerSegment);
    checkHeaderPolicy(decoded);
    header = deepFreeze(decoded);
    rememberHeader(headerSegment, header);
  }
  return { header, headerSegment, payloadSegment, signatureSegment, signingInput: token.slice(0, second) };
}

/**
 * Headers that passed the policy, by their exact base64url text. An IdP signs every token with
 * the same few headers, so this skips the decode and the checks for almost every token; the
 * result is a pure function of the text, and only accepted headers are kept. Bounded: an
 * attacker sending random headers only evicts entries.
 */
const acceptedHeaders = new Map<string, JwsHeader>();
const MAX_REMEMBERED_HEADERS = 256;
const MAX_REMEMBERED_HEADER_LENGTH = 1024;

function rememberHeader(segment: string, header: JwsHeader): void {
  if (segment.length > MAX_REMEMBERED_HEADER_LENGTH) return;
  if (acceptedHeaders.size >= MAX_REMEMBERED_HEADERS) {
    const oldest = acceptedHeaders.keys().next();
    if (!oldest.done) acceptedHeaders.delete(oldest.value);
  }
  acceptedHeaders.set(segment, header);
}

function checkHeaderPolicy(header: Record<string, unknown>): asserts header is JwsHeader {
  const alg = header['alg'];
  if (typeof alg !== 'string' || alg.length === 0) throw new ShieldError('ERR_TOKEN_MALFORMED');
  // `none` in any casing, and anything we do not implement.
  if (!SUPPORTED.has(alg)) throw new ShieldError('ERR_TOKEN_ALG_NOT_ALLOWED');
  for (const name of REFUSED_HEADER_PARAMS) {
    if (Object.hasOwn(header, name)) {
      throw new ShieldError('ERR_TOKEN_HEADER_UNSUPPORTED', { detail: `header "${name}"` });
    }
  }
  const kid = header['kid'];
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) {
    throw new ShieldError('ERR_TOKEN_MALFORMED', { detail: 'kid' });
  }
  const typ = header['typ'];
  if (typ !== undefined && typeof typ !== 'string') throw new ShieldError('ERR_TOKEN_MALFORMED');
  // RFC 7519 §5.2: `cty: JWT` announces a nested JWT. An access token is never nested, and
  // unwrapping one would verify an inner token with the outer token's trust.
  const cty = header['cty'];
  if (cty !== undefined) {
    if (typeof cty !== 'string') throw new ShieldError('ERR_TOKEN_MALFORMED');
    const normalized = cty.toLowerCase();
    if (normalized === 'jwt' || normalized === 'application/jwt') {
      throw new ShieldError('ERR_TOKEN_HEADER_UNSUPPORTED', { detail: 'header "cty"' });
    }
  }
}

/**
 * Decodes the claims set of an inspected token: strict UTF-8, strict JSON, no duplicate members,
 * a JSON object. Signature not checked yet: the result only picks the issuer.
 */
export function decodeClaims(jws: InspectedJws): Record<string, unknown> {
  if (jws.payloadSegment.length === 0) throw new ShieldError('ERR_TOKEN_MALFORMED');
  return decodeJsonObjectSegment(jws.payloadSegment);
}

/** True for the HMAC algorithms (a shared secret, never a key from a key set). */
export function isSymmetricAlgorithm(alg: string): alg is 'HS256' | 'HS384' | 'HS512' {
  return alg === 'HS256' || alg === 'HS384' || alg === 'HS512';
}
