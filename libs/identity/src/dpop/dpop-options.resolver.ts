import {
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertStringArray,
  describeValue,
} from '@inference-shield/core/internal';
import { isSymmetricAlgorithm, SUPPORTED_ALGORITHMS } from '../tokens/jws-inspect.js';
import type { ResolvedDpopOptions } from './dpop-options.interface.js';
import { MemoryDpopReplayStore } from './dpop-replay.store.js';

/** The proof algorithms accepted when `dpop.algorithms` is not given. */
export const DEFAULT_DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256'] as const;

const DPOP_KEYS = [
  'origin',
  'algorithms',
  'proofMaxAgeSeconds',
  'clockToleranceSeconds',
  'maxProofBytes',
  'replayStore',
  'nonce',
] as const;

function resolveOrigin(field: string, value: unknown): string {
  if (typeof value !== 'string')
    throw new TypeError(`"${field}" must be an https: origin, got ${describeValue(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(
      `"${field}" must be an https: origin such as "https://api.example", got ${describeValue(value)}`,
    );
  }
  // An origin only: the request's path is appended to it, and a path here would be a silent mismatch.
  if (
    url.protocol !== 'https:' ||
    url.username !== '' ||
    url.password !== '' ||
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search !== '' ||
    url.hash !== '' ||
    value.endsWith('?') ||
    value.endsWith('#')
  ) {
    throw new TypeError(
      `"${field}" must be an https: origin (scheme, host and port only) such as "https://api.example", got ${describeValue(value)}`,
    );
  }
  return url.origin;
}

/**
 * Validates `dpop` options once, at start-up: a bad field throws a `TypeError` naming it. The
 * nonce secret is copied (and never printed).
 */
export function resolveDpopOptions(raw: unknown, field = 'dpop'): ResolvedDpopOptions {
  assertKnownKeys(field, raw, DPOP_KEYS);
  const originRaw: unknown = raw['origin'];
  if (originRaw === undefined) {
    throw new TypeError(
      `"${field}.origin" is required: the public https: origin clients call (a proof's htu is checked against it, never against the Host header)`,
    );
  }
  const originList: readonly unknown[] = Array.isArray(originRaw) ? originRaw : [originRaw];
  if (originList.length === 0 || originList.length > 16) {
    throw new TypeError(`"${field}.origin" must be an origin or a list of 1 to 16 origins`);
  }
  const origins = new Set(
    originList.map((o, i) =>
      resolveOrigin(Array.isArray(originRaw) ? `${field}.origin[${i}]` : `${field}.origin`, o),
    ),
  );

  let algorithms: string[] = [...DEFAULT_DPOP_ALGORITHMS];
  if (raw['algorithms'] !== undefined) {
    const list: unknown = raw['algorithms'];
    assertStringArray(`${field}.algorithms`, list, { nonEmpty: true });
    for (const alg of list) {
      // A proof is signed by the client's own key pair: a shared secret has no place here.
      if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(alg) || isSymmetricAlgorithm(alg)) {
        throw new TypeError(
          `"${field}.algorithms" holds ${JSON.stringify(alg)}; allowed: ${SUPPORTED_ALGORITHMS.filter((a) => !isSymmetricAlgorithm(a)).join(', ')}`,
        );
      }
    }
    algorithms = [...new Set(list)];
  }

  const proofMaxAgeSeconds = raw['proofMaxAgeSeconds'] ?? 60;
  assertInteger(`${field}.proofMaxAgeSeconds`, proofMaxAgeSeconds, 1, 300);
  const clockToleranceSeconds = raw['clockToleranceSeconds'] ?? 5;
  assertInteger(`${field}.clockToleranceSeconds`, clockToleranceSeconds, 0, 60);
  const maxProofBytes = raw['maxProofBytes'] ?? 4096;
  assertInteger(`${field}.maxProofBytes`, maxProofBytes, 1024, 16_384);

  let replayStore = raw['replayStore'];
  if (replayStore === undefined) replayStore = new MemoryDpopReplayStore();
  else {
    assertObject(`${field}.replayStore`, replayStore);
    if (typeof replayStore['claim'] !== 'function') {
      throw new TypeError(
        `"${field}.replayStore" must have a claim(key, ttlMs) method (MemoryDpopReplayStore, RedisDpopReplayStore), got ${describeValue(replayStore)}`,
      );
    }
  }

  let nonce: ResolvedDpopOptions['nonce'];
  if (raw['nonce'] !== undefined) {
    const n: unknown = raw['nonce'];
    assertKnownKeys(`${field}.nonce`, n, ['secret', 'rotationSeconds']);
    const secret: unknown = n['secret'];
    let bytes: Uint8Array;
    if (typeof secret === 'string') bytes = new Uint8Array(Buffer.from(secret, 'utf8'));
    else if (secret instanceof Uint8Array) bytes = new Uint8Array(secret);
    else throw new TypeError(`"${field}.nonce.secret" must be a string or a Uint8Array of at least 32 bytes`);
    // Never print the secret, not even its beginning.
    if (bytes.length < 32)
      throw new TypeError(`"${field}.nonce.secret" must be at least 32 bytes, got ${bytes.length}`);
    const rotationSeconds = n['rotationSeconds'] ?? 300;
    assertInteger(`${field}.nonce.rotationSeconds`, rotationSeconds, 30, 3600);
    nonce = Object.freeze({ secret: bytes, rotationMs: rotationSeconds * 1000 });
  }

  return Object.freeze({
    origins,
    algorithms: Object.freeze(algorithms),
    proofMaxAgeSeconds,
    clockToleranceSeconds,
    maxProofBytes,
    replayStore: replayStore as unknown as ResolvedDpopOptions['replayStore'],
    nonce,
  });
}
