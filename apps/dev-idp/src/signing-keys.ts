/**
 * The dev IdP's signing keys: a private JWKS kept on disk so that a restart keeps the same `kid`s
 * (resource servers that cached the key set keep verifying), and rotated on demand.
 *
 * The file is private key material: mode 0600 in a 0700 directory, written atomically (temp file +
 * rename) so a crash or a concurrent reader never sees half a key set.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';

/** A private EC P-256 signing key as stored in the keys file (RFC 7517 member names). */
export interface DevIdpSigningJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  d: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

/** The private JWKS file content: the signing key first, then at most {@link MAX_OLD_KEYS} retired keys. */
export interface DevIdpPrivateJwks {
  keys: DevIdpSigningJwk[];
}

/**
 * Retired keys kept in the set after a rotation. Tokens signed with them keep verifying until they
 * expire (access tokens live minutes) and resource servers have refetched the set.
 */
export const MAX_OLD_KEYS = 2;

/** Default location of the keys file, relative to the working directory. */
export const DEFAULT_KEYS_FILE = '.shield/idp/jwks.json';

// A keys file is a few KB; anything larger is not ours.
const MAX_KEYS_FILE_BYTES = 64 * 1024;

/** Generate one ES256 key; `kid` is its RFC 7638 thumbprint, so it names the key and nothing else. */
export async function generateSigningKey(): Promise<DevIdpSigningJwk> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const { x, y, d } = jwk;
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !x || !y || !d) {
    throw new Error('jose exported an unexpected JWK for an ES256 key');
  }
  const kid = await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x, y }, 'sha256');
  return { kty: 'EC', crv: 'P-256', x, y, d, kid, alg: 'ES256', use: 'sig' };
}

function isB64u(value: unknown): value is string {
  return (
    typeof value === 'string' && value.length > 0 && value.length <= 256 && /^[A-Za-z0-9_-]+$/.test(value)
  );
}

/** Check the parsed file strictly: a file that is not exactly what we write is refused, never "repaired". */
function parseKeySet(file: string, text: string): DevIdpPrivateJwks {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`dev IdP keys file ${file} is not valid JSON; delete it to generate new keys`);
  }
  const bad = (why: string): Error =>
    new Error(
      `dev IdP keys file ${file} is not a private ES256 JWKS (${why}); delete it to generate new keys`,
    );
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys)) {
    throw bad('no "keys" array');
  }
  const raw = (parsed as { keys: unknown[] }).keys;
  if (raw.length === 0 || raw.length > MAX_OLD_KEYS + 1) throw bad(`${raw.length} keys`);
  const kids = new Set<string>();
  const keys = raw.map((k, i): DevIdpSigningJwk => {
    if (typeof k !== 'object' || k === null) throw bad(`keys[${i}] is not an object`);
    const key = k as Record<string, unknown>;
    const { kty, crv, x, y, d, kid, alg, use } = key;
    if (kty !== 'EC' || crv !== 'P-256' || alg !== 'ES256' || use !== 'sig') {
      throw bad(`keys[${i}] is not an EC P-256 ES256 signing key`);
    }
    if (!isB64u(x) || !isB64u(y) || !isB64u(d) || !isB64u(kid))
      throw bad(`keys[${i}] has a malformed member`);
    if (kids.has(kid)) throw bad(`duplicate kid ${kid}`);
    kids.add(kid);
    return { kty, crv, x, y, d, kid, alg, use };
  });
  return { keys };
}

/**
 * Read the keys file. Returns `undefined` when it does not exist; throws when it exists but is
 * unreadable, malformed, or readable by other users (private key material left open is refused
 * rather than silently used).
 */
export function readKeySet(file: string): DevIdpPrivateJwks | undefined {
  let size: number;
  let mode: number;
  try {
    ({ size, mode } = statSync(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`dev IdP keys file ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (size > MAX_KEYS_FILE_BYTES) throw new Error(`dev IdP keys file ${file} is too large (${size} bytes)`);
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new Error(
      `dev IdP keys file ${file} is readable by other users (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`,
    );
  }
  return parseKeySet(file, readFileSync(file, 'utf8'));
}

/** Write the key set atomically: 0700 directory, 0600 temp file in the same directory, rename. */
export function writeKeySet(file: string, jwks: DevIdpPrivateJwks): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.jwks-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  try {
    // `mode` applies only when the file is created, which a fresh random name guarantees ('wx').
    writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600); // the umask may have narrowed it further; never wider
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Read the keys file, creating it with one fresh key when it does not exist. */
export async function loadOrCreateKeySet(file: string): Promise<DevIdpPrivateJwks> {
  const existing = readKeySet(file);
  if (existing) return existing;
  const jwks = { keys: [await generateSigningKey()] };
  writeKeySet(file, jwks);
  return jwks;
}

/**
 * Rotate the signing key in `file`: a new key goes first (oidc-provider signs with the first key
 * matching the algorithm), the previous keys stay behind it so tokens they signed still verify,
 * and only the {@link MAX_OLD_KEYS} most recent retired keys are kept.
 *
 * @returns the new key set (private); its first key is the new signing key.
 */
export async function rotateDevIdpKeys(file: string = DEFAULT_KEYS_FILE): Promise<DevIdpPrivateJwks> {
  const current = readKeySet(file);
  const next = { keys: [await generateSigningKey(), ...(current?.keys ?? []).slice(0, MAX_OLD_KEYS)] };
  writeKeySet(file, next);
  return next;
}
