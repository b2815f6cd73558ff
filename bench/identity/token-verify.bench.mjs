// Cost per request of access-token verification, against the raw signature check it wraps.
//
//   npm run build && node bench/identity/token-verify.bench.mjs [iterations]
//
// Runs from the compiled output (dist/), so what is measured is what ships. Prints µs/op, one
// line per case, and a markdown table for bench/identity/README.md. Numbers only mean something
// on an otherwise idle machine; run it twice and keep the second run.
import { verify, KeyObject } from 'node:crypto';
import { cpus } from 'node:os';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
// The verifier is measured on its own, outside Nest: an internal class, on purpose.
// eslint-disable-next-line no-restricted-imports -- the verifier under measurement
import { resolveTokenVerifierOptions, TokenVerifier } from '@inference-shield/identity/internal';

const N = Number(process.argv[2] ?? 2000);
const ISSUER = 'https://idp.bench.test';
const AUDIENCE = 'https://api.bench.test';

const ROUNDS = 5;

/** µs per operation of `fn` over `n` runs, after a warm-up of n/10. */
async function measure(n, fn) {
  for (let i = 0; i < Math.max(50, n / 10); i++) await fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

/**
 * The cases of one algorithm measured in interleaved rounds, keeping each case's best round:
 * on a shared machine, noise only ever adds time, so the minimum is the better estimate.
 */
async function bestOf(cases, n) {
  const best = Object.fromEntries(Object.keys(cases).map((k) => [k, Infinity]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(cases)) best[name] = Math.min(best[name], await measure(n, fn));
  }
  return best;
}

async function keyFor(alg, kid) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function claims(i) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: `user-${i}`,
    iat: now,
    exp: now + 3600,
    jti: `jti-${i}`,
    scope: 'models:infer',
  };
}

const tokensFor = (key, n) =>
  Promise.all(
    Array.from({ length: n }, (_, i) =>
      new SignJWT(claims(i))
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .sign(key.privateKey),
    ),
  );

const rs = await keyFor('RS256', 'rs');
const es = await keyFor('ES256', 'es');
const ed = await keyFor('EdDSA', 'ed');
const verifier = await TokenVerifier.create(
  resolveTokenVerifierOptions({
    cacheMaxEntries: 1_000_000,
    issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [rs.jwk, es.jwk, ed.jwk] } }],
  }),
);

const results = [];
for (const key of [rs, es, ed]) {
  // Enough distinct tokens that every miss-round verifies tokens never seen before.
  const tokens = await tokensFor(key, ROUNDS * (N + Math.max(50, N / 10)) + 1);
  const one = tokens[0];
  const [h, p, s] = one.split('.');
  const input = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s, 'base64url');
  const publicKey = KeyObject.from(key.publicKey);
  const options = key.alg === 'ES256' ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey;
  const hash = key.alg === 'EdDSA' ? null : 'sha256';
  if (!verify(hash, input, options, signature)) throw new Error('raw verify failed');

  let next = 1;
  const hitsBefore = verifier.stats().cacheHits;
  const best = await bestOf(
    {
      raw: () => {
        verify(hash, input, options, signature);
      },
      jose: () =>
        jwtVerify(one, key.publicKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: [key.alg] }),
      // A fresh token each time: the whole path, signature included (cache miss, then insert).
      miss: () => verifier.verify(tokens[next++]),
      // The same token again: hash, lookup, exp and binding checks.
      hit: () => verifier.verify(one),
    },
    N,
  );
  if (verifier.stats().cacheHits - hitsBefore < ROUNDS * N)
    throw new Error('the hit case did not hit the cache');
  results.push({ alg: key.alg, ...best });
}
await verifier.close();

const fmt = (x) => x.toFixed(1);
console.log(
  `token verification, best of ${ROUNDS} rounds of ${N}, Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`,
);
console.log('| alg | raw crypto.verify | jose.jwtVerify | TokenVerifier miss | TokenVerifier hit |');
console.log('|---|---|---|---|---|');
for (const r of results)
  console.log(`| ${r.alg} | ${fmt(r.raw)} µs | ${fmt(r.jose)} µs | ${fmt(r.miss)} µs | ${fmt(r.hit)} µs |`);
