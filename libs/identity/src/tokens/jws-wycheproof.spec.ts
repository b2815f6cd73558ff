/**
 * C2SP Wycheproof JWS vectors (test/vectors/wycheproof, see its README) through the
 * signature stage of our verification path: size cap, compact form, strict header decode and
 * policy, the allowed-algorithm list, key lookup in a key set holding only the group's key,
 * and jose's signature check. The vectors carry no `iss`/`exp` (their payloads are often not
 * JSON), so the claims stage is tested in token-verifier.spec.ts.
 *
 * Every `invalid` vector must be refused. A `valid` vector we refuse must be listed in
 * REFUSED_VALID with the reason our policy is stricter than the vector's.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import type { JWK } from 'jose';
import { IssuerKeySet } from './issuer-key-set.js';
import { verifyJwsSignature } from './jws-signature.js';
import { resolveTokenVerifierOptions } from './token-verifier-options.js';

interface WycheproofTest {
  tcId: number;
  comment: string;
  jws: string;
  result: 'valid' | 'invalid' | 'acceptable';
  flags: string[];
}
interface WycheproofGroup {
  comment: string;
  public?: JWK;
  private?: JWK;
  tests: WycheproofTest[];
}

const FILE = fileURLToPath(
  new URL('../../../../test/vectors/wycheproof/json_web_signature_test.json', import.meta.url),
);
const data = JSON.parse(readFileSync(FILE, 'utf8')) as {
  numberOfTests: number;
  testGroups: WycheproofGroup[];
};

/** Valid vectors we refuse on purpose, and why. */
const REFUSED_VALID: Readonly<Record<number, string>> = {
  // RFC 7520 §4.2 signs with PS384 using a key whose JWK says "alg": "PS256". The key's alg is
  // the only algorithm we allow for it (README), and jose (RFC 7517 §4.4) never uses a JWK for
  // another alg than its own: one key, one algorithm, no cross-algorithm reuse.
  346: 'PS384 token, key pinned to PS256',
  350: 'PS384 token, key pinned to PS256',
  // RFC 7520 §4.3's key says "alg": "ES521", which is not a JWS algorithm (RFC 7518 §3.1 names
  // it ES512): our options refuse an unknown algorithm at start-up, so the key set never exists.
  347: 'key alg "ES521" is not a registered JWS algorithm',
  351: 'key alg "ES521" is not a registered JWS algorithm',
  // A "?" inserted into a segment. RFC 7515 §2 and §7.1: segments are base64url with no other
  // characters. Lenient decoders skip it and the MAC still matches; we refuse the encoding,
  // so a token has exactly one spelling (and one cache key).
  372: 'non-base64url character in the header segment',
  373: 'non-base64url character in the payload segment',
};

/**
 * `invalid` vectors that are byte for byte the same string as a `valid` vector of the same
 * group, with the same key: no verifier can refuse one and accept the other. "invalidBase64Padding"
 * vectors lost the `=` padding they were written to test (upstream data issue). We assert they
 * are identical (so this list cannot hide a real case) and test padding with our own vector.
 */
const IDENTICAL_TO_VALID: Readonly<Record<number, number>> = { 367: 357, 370: 357 };

const outcomes: Array<{ tcId: number; result: string; refused: string | undefined }> = [];
const keySets: IssuerKeySet[] = [];
const closed = new AbortController();

/** A key set with only `key`, `alg` its one allowed algorithm: built the way TokenVerifier builds one. */
async function keySetFor(
  key: JWK,
  alg: string,
): Promise<{ keySet: IssuerKeySet; algorithms: readonly string[] }> {
  const base = { issuer: 'https://wycheproof.example.test', audience: 'wycheproof', algorithms: [alg] };
  const issuer =
    key.kty === 'oct'
      ? { ...base, sharedSecret: Buffer.from(key.k ?? '', 'base64url') }
      : { ...base, jwks: { keys: [key] } };
  const resolved = resolveTokenVerifierOptions({ issuers: [issuer] });
  const options = resolved.issuers[0];
  if (!options) throw new Error('no issuer');
  const keySet = new IssuerKeySet(options, {
    now: Date.now,
    fetch: () => Promise.reject(new Error('no fetch')),
    closed: closed.signal,
  });
  keySets.push(keySet);
  await keySet.load();
  return { keySet, algorithms: options.algorithms };
}

function headerAlg(jws: string): string {
  try {
    const alg = (
      JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg?: unknown }
    ).alg;
    return typeof alg === 'string' ? alg : 'RS256';
  } catch {
    return 'RS256';
  }
}

/** undefined when accepted; otherwise what refused it. */
async function run(group: WycheproofGroup, test: WycheproofTest): Promise<string | undefined> {
  const key = group.public ?? group.private;
  if (!key) throw new Error(`group without key: ${group.comment}`);
  // Groups whose key names no alg (the wrong-use groups): the token's alg is the allowed one.
  const alg = key.alg ?? headerAlg(test.jws);
  let built: Awaited<ReturnType<typeof keySetFor>>;
  try {
    built = await keySetFor(key, alg);
  } catch (err) {
    if (err instanceof TypeError) return `configuration refused: ${err.message}`;
    throw err;
  }
  try {
    await verifyJwsSignature(test.jws, built.keySet, { algorithms: built.algorithms, maxTokenBytes: 8192 });
    return undefined;
  } catch (err) {
    // Every refusal is typed: a foreign error here would be a 500 in production.
    if (!isShieldError(err)) throw err;
    return err.code;
  }
}

const cases = data.testGroups.flatMap((group) =>
  group.tests.map((test) => ({ group, test, name: `tc${test.tcId} ${test.result} ${test.comment}` })),
);

describe('Wycheproof JWS vectors through the signature stage', () => {
  afterAll(async () => {
    closed.abort();
    await Promise.all(keySets.map((k) => k.close()));
  });

  it('reads all the vectors of the file', () => {
    expect(cases).toHaveLength(data.numberOfTests);
  });

  it.each(cases)('$name', async ({ group, test }) => {
    const refused = await run(group, test);
    outcomes.push({ tcId: test.tcId, result: test.result, refused });
    const twin = IDENTICAL_TO_VALID[test.tcId];
    if (twin !== undefined) {
      expect(group.tests.find((t) => t.tcId === twin)?.jws).toBe(test.jws);
      expect(refused).toBeUndefined();
      // What the vector meant to test: padding in a segment.
      const [h, p, sig] = test.jws.split('.');
      expect(await run(group, { ...test, jws: `${h}.${p}==.${sig}` })).toBe('ERR_TOKEN_MALFORMED');
      expect(await run(group, { ...test, jws: `${h}.${p}.${sig}=` })).toBe('ERR_TOKEN_MALFORMED');
    } else if (test.result === 'invalid') {
      expect(refused, `tc${test.tcId} must be refused`).toBeDefined();
    } else if (test.result === 'valid') {
      if (REFUSED_VALID[test.tcId] !== undefined) expect(refused).toBeDefined();
      else expect(refused).toBeUndefined();
    }
  });

  it('refuses every invalid vector and accepts every valid one not documented', async () => {
    // Recomputed unless the table above just ran in full, so this test stands on its own.
    if (outcomes.length !== cases.length) {
      outcomes.length = 0;
      for (const { group, test } of cases) {
        outcomes.push({ tcId: test.tcId, result: test.result, refused: await run(group, test) });
      }
    }
    const invalid = outcomes.filter(
      (o) => o.result === 'invalid' && IDENTICAL_TO_VALID[o.tcId] === undefined,
    );
    const valid = outcomes.filter((o) => o.result === 'valid');
    expect(invalid.length).toBeGreaterThan(300);
    expect(invalid.every((o) => o.refused !== undefined)).toBe(true);
    expect(valid.filter((o) => o.refused !== undefined).map((o) => o.tcId)).toEqual(
      Object.keys(REFUSED_VALID).map(Number),
    );
  });
});
