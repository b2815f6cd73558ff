// What a cache miss costs in place (#18 target 2): the server CPU per request of a guarded Nest
// route when every request brings a new token, against the same route with one token reused plus
// one raw `crypto.verify` of a new token of the same algorithm in the handler: the raw check, in
// place.
//
//   npm run build && node bench/identity/cache-miss.bench.mjs
//
// Environment: BENCH_ROUNDS (5), BENCH_SECONDS (3), BENCH_CONNECTIONS (32), BENCH_SERVER_CPU and
// BENCH_WRK_CPU (default: the idlest core for the server, the other for wrk), BENCH_ALGS (a
// comma-separated subset of ES256,RS256,EdDSA), BENCH_ADAPTER (express | fastify),
// BENCH_CACHE_ENTRIES (the verifier's cacheMaxEntries; default: as shipped, 10,000),
// BENCH_PROFILE=1 (each server writes a V8 CPU profile to /tmp/shield-miss-prof/ when it stops),
// BENCH_OUT (results file; `-`: print only), BENCH_SMOKE=1 (a short run, nothing written),
// BENCH_HOT=1 and BENCH_FLOOR=1 (two more servers, below).
//
// The server is one Nest app as a user would write it: IdentityModule with three issuers (one
// key each, inline: ES256 on P-256, RS256 on RSA-2048, EdDSA on Ed25519), the default audit sink
// (JSON lines to a real stdout, here /dev/null), and a POST route guarded by
// @RequireScopes('models:infer'), served over TLS 1.3. Three servers run it (five with the
// opt-ins), one per load, each pinned to the same core (one at a time) so each CPU profile holds
// one path. Every request
// carries two tokens (post-token-pairs.lua): the bearer token, and another in `X-Raw-Token`, so
// that every server reads the same bytes whichever token it checks:
//   reused   the same bearer token on every request (the connection memo answers: the hit path);
//            `X-Raw-Token` is ignored;
//   fresh    a new bearer token on every request, never among the last 10,000 verified (the
//            cache's size): every request is a miss; `X-Raw-Token` (the reused token) is ignored;
//   control  the reused bearer token, and the handler calls `crypto.verify` once on the new token
//            in `X-Raw-Token` (its signing input and signature taken from the request's header, a
//            KeyObject made from the JWK, as a user of node:crypto would): the hit path plus the
//            raw check of a new token, made in the same place as ours;
//   hot      (BENCH_HOT=1) as control, but the handler verifies one sample token, the same on every request
//            (its bytes decoded once): the raw check with its inputs always in the CPU's caches,
//            the baseline of the first version of this harness, kept for comparison.
// Also, per round, the raw check in a tight loop in a child on the same core: the figure a
// micro-benchmark gives. In place, with Node's TLS, HTTP and Nest code running between two
// checks, OpenSSL's verify costs two to three times that (its code and data are no longer in the
// CPU's caches): `raw in place` measures it, and the target is read against it.
// miss − hit is the miss's whole cost in place; miss − control is what we add to the raw check.
// Target: miss − control ≤ 20 µs for each algorithm. Medians over the rounds. The target is read
// against the control, not the hot sample: a miss verifies bytes no earlier request brought, and
// a raw check of one constant token keeps its inputs in the CPU's caches, which no verifier of
// new tokens can do. Both are reported.
import 'reflect-metadata';
import { createPublicKey, generateKeyPairSync, hash as digest, sign, verify } from 'node:crypto';
import { mkdirSync, openSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ask,
  coresByIdle,
  cpuIndex,
  cpuMicros,
  formatted,
  median,
  onParentMessages,
  positiveInt,
  runWrk,
  startChild,
  stopChild,
  table,
} from '../support/bench-kit.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const WRK_SCRIPT = fileURLToPath(new URL('./post-token-pairs.lua', import.meta.url));
const AUDIENCE = 'inference';
const ROUTE = '/v2/models/demo/infer';
const BODY = JSON.stringify({ inputs: [0.1, 0.7, 0.2] });
const ALGS = {
  ES256: { issuer: 'https://es.bench.local', keygen: ['ec', { namedCurve: 'P-256' }], hash: 'sha256' },
  RS256: { issuer: 'https://rs.bench.local', keygen: ['rsa', { modulusLength: 2048 }], hash: 'sha256' },
  EdDSA: { issuer: 'https://ed.bench.local', keygen: ['ed25519', {}], hash: null },
};
const ADAPTER = process.env.BENCH_ADAPTER ?? 'express';
// Opt-in servers (each adds a load per algorithm and round): BENCH_HOT=1 the `hot` one (see the
// header); BENCH_FLOOR=1 `floor`, whose handler runs the least a caching verifier of new tokens
// does (see rawVerifier): how far from the raw check that floor is, in place.
const KINDS = [
  'reused',
  'fresh',
  'control',
  ...(process.env.BENCH_HOT === '1' ? ['hot'] : []),
  ...(process.env.BENCH_FLOOR === '1' ? ['floor'] : []),
];
if (!['express', 'fastify'].includes(ADAPTER)) throw new Error(`BENCH_ADAPTER: unknown adapter "${ADAPTER}"`);

/** Child: the guarded app. */
async function serve() {
  const { Body, Controller, Headers, HttpCode, Module, Post } = await import('@nestjs/common');
  const { NestFactory } = await import('@nestjs/core');
  const identity = await import('@inference-shield/identity');
  const { TOKEN_VERIFIER } = await import('@inference-shield/identity/internal');
  const setup = await new Promise((ok) => process.once('message', ok));
  // The control server: one raw `crypto.verify` in the handler per request, of the algorithm the
  // parent names before each run (a sample token, parsed once), on a key made the way a user of
  // node:crypto would make it: the call our verifier makes, in the same place.
  const kind = process.argv[3];
  const checks = ['control', 'hot', 'floor'].includes(kind) ? rawVerifier(setup) : undefined;
  let rawAlg;

  class DemoController {
    infer(body, rawToken) {
      if (checks !== undefined) {
        const ok =
          kind === 'hot'
            ? checks.sample(rawAlg)
            : kind === 'floor'
              ? checks.floor(rawAlg, rawToken)
              : checks.token(rawAlg, rawToken);
        if (!ok) throw new Error('raw verify failed');
      }
      return { model: 'demo', outputs: body.inputs };
    }
  }
  Body()(DemoController.prototype, 'infer', 0);
  Headers('x-raw-token')(DemoController.prototype, 'infer', 1);
  Reflect.decorate(
    [Post('infer'), HttpCode(200), identity.RequireScopes('models:infer')],
    DemoController.prototype,
    'infer',
    Object.getOwnPropertyDescriptor(DemoController.prototype, 'infer'),
  );
  Reflect.decorate([Controller('v2/models/demo')], DemoController);
  class AppModule {}
  Reflect.decorate(
    [
      Module({
        imports: [
          identity.IdentityModule.forRoot({
            oidc: {
              ...(process.env.BENCH_CACHE_ENTRIES
                ? { cacheMaxEntries: Number(process.env.BENCH_CACHE_ENTRIES) }
                : {}),
              issuers: setup.issuers.map(({ issuer, jwk }) => ({
                issuer,
                audience: AUDIENCE,
                jwks: { keys: [jwk] },
                algorithms: [jwk.alg],
              })),
            },
          }),
        ],
        controllers: [DemoController],
      }),
    ],
    AppModule,
  );
  const httpsOptions = {
    key: setup.keyPem,
    cert: setup.certPem,
    minVersion: 'TLSv1.3',
  };
  const app =
    ADAPTER === 'fastify'
      ? await NestFactory.create(
          AppModule,
          new (await import('@nestjs/platform-fastify')).FastifyAdapter({ https: httpsOptions }),
          { logger: false },
        )
      : await NestFactory.create(AppModule, { httpsOptions, logger: false });
  await app.listen(0, '127.0.0.1');
  process.on('message', (msg) => {
    if (typeof msg === 'object' && msg !== null && 'rawAlg' in msg) {
      rawAlg = msg.rawAlg;
      process.send({ rawAlgSet: rawAlg });
    }
  });
  onParentMessages({
    cpu: () => process.send({ cpu: process.cpuUsage() }),
    stats: () => {
      const s = app.get(TOKEN_VERIFIER).stats();
      process.send({
        stats: { cacheHits: s.cacheHits, cacheMisses: s.cacheMisses, memoHits: s.connectionMemoHits },
      });
    },
    close: async () => {
      await app.close();
      process.exit(0); // flushes --cpu-prof
    },
  });
  process.send({ ready: { port: app.getHttpServer().address().port } });
}

/**
 * The raw checks: `token(alg, token)` is one `crypto.verify` of a compact JWS of that algorithm,
 * its signing input and signature taken from the token text (the least any verifier of a new
 * token does); `sample(alg)` verifies the sample token of that algorithm, decoded once.
 */
function rawVerifier(setup) {
  const keys = {};
  const samples = {};
  for (const { jwk, sample } of setup.issuers) {
    const alg = jwk.alg;
    const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
    const key = alg === 'ES256' ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey;
    const hash = ALGS[alg].hash;
    keys[alg] = { hash, key };
    const dot = sample.lastIndexOf('.');
    const data = Buffer.from(sample.slice(0, dot));
    const signature = Buffer.from(sample.slice(dot + 1), 'base64url');
    samples[alg] = () => verify(hash, data, key, signature);
  }
  // The floor: what the least verifier with a cache does for a new token, and nothing more (no
  // strict JSON, no header policy, no principal, no audit): a SHA-256 cache key and a lookup, the
  // header and claims decoded and parsed, iss, aud, sub and exp looked at, the signature, the
  // result kept (10,000 at most). Not a verifier to use: a measure of how low one can go in place.
  const seen = new Map();
  const issuerOf = Object.fromEntries(setup.issuers.map(({ issuer, jwk }) => [jwk.alg, issuer]));
  const floor = (alg, token) => {
    const first = token.indexOf('.');
    const dot = token.lastIndexOf('.');
    const cacheKey = digest('sha256', token, 'base64url');
    if (seen.has(cacheKey)) return true;
    const header = JSON.parse(Buffer.from(token.slice(0, first), 'base64url').toString('utf8'));
    const claims = JSON.parse(Buffer.from(token.slice(first + 1, dot), 'base64url').toString('utf8'));
    if (header.alg !== alg || claims.iss !== issuerOf[alg] || claims.aud !== AUDIENCE) return false;
    if (typeof claims.sub !== 'string' || !(claims.exp * 1000 > Date.now())) return false;
    const { hash, key } = keys[alg];
    const signature = Buffer.from(token.slice(dot + 1), 'base64url');
    if (!verify(hash, Buffer.from(token.slice(0, dot)), key, signature)) return false;
    if (seen.size >= 10_000) seen.delete(seen.keys().next().value);
    seen.set(cacheKey, claims);
    return true;
  };
  return {
    floor,
    sample: (alg) => samples[alg](),
    token: (alg, token) => {
      const { hash, key } = keys[alg];
      const dot = token.lastIndexOf('.');
      return verify(
        hash,
        Buffer.from(token.slice(0, dot)),
        key,
        Buffer.from(token.slice(dot + 1), 'base64url'),
      );
    },
  };
}

/** Child: the raw signature check in a tight loop, µs per call, for the algorithm asked. */
async function rawVerify() {
  const setup = await new Promise((ok) => process.once('message', ok));
  const check = rawVerifier(setup).sample;
  onParentMessages({ close: () => process.exit(0) });
  process.on('message', (msg) => {
    if (typeof msg !== 'object' || msg === null || !('measure' in msg)) return;
    const { alg, ms } = msg.measure;
    for (let i = 0; i < 200; i++) check(alg);
    let n = 0;
    const start = process.cpuUsage();
    const until = performance.now() + ms;
    while (performance.now() < until) {
      for (let i = 0; i < 50; i++) if (!check(alg)) throw new Error('raw verify failed');
      n += 50;
    }
    process.send({ raw: cpuMicros(process.cpuUsage(start)) / n });
  });
  process.send({ ready: {} });
}

function mint(alg, privateKey, issuer, count, start) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const header = b64({ alg, typ: 'at+jwt', kid: `${alg}-1` });
  const now = Math.floor(Date.now() / 1000);
  const tokens = [];
  for (let i = start; i < start + count; i++) {
    const input = `${header}.${b64({
      iss: issuer,
      aud: AUDIENCE,
      sub: `client-${i % 97}`,
      iat: now,
      exp: now + 7200,
      jti: `t-${i}`,
      scope: 'models:infer',
    })}`;
    const key = alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey;
    tokens.push(`${input}.${sign(ALGS[alg].hash, Buffer.from(input), key).toString('base64url')}`);
  }
  return tokens;
}

async function main() {
  const smoke = process.env.BENCH_SMOKE === '1';
  const ROUNDS = positiveInt('BENCH_ROUNDS', 5, 50);
  const SECONDS = positiveInt('BENCH_SECONDS', 3, 60);
  const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 32, 512);
  const algs = (process.env.BENCH_ALGS ?? 'ES256,RS256,EdDSA').split(',');
  for (const a of algs) if (!(a in ALGS)) throw new Error(`BENCH_ALGS: unknown algorithm "${a}"`);
  const { order } = await coresByIdle();
  const SERVER_CPU = cpuIndex('BENCH_SERVER_CPU', order[0] ?? 0);
  const WRK_CPU = cpuIndex('BENCH_WRK_CPU', order[1] ?? order[0] ?? 0);
  const profileDir = process.env.BENCH_PROFILE === '1' ? '/tmp/shield-miss-prof' : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  const { DevCertificateAuthority } = await import('@inference-shield/dev-pki');
  const ca = await DevCertificateAuthority.create();
  const server = await ca.issueServer();
  const keys = {};
  const issuers = [];
  for (const alg of algs) {
    const [type, opts] = ALGS[alg].keygen;
    const pair = generateKeyPairSync(type, opts);
    keys[alg] = pair.privateKey;
    const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid: `${alg}-1`, alg, use: 'sig' };
    const sample = mint(alg, pair.privateKey, ALGS[alg].issuer, 1, 1_000_000)[0]; // not in the pool
    issuers.push({ issuer: ALGS[alg].issuer, jwk, sample });
  }
  // Tokens: enough that a fresh run never presents one the cache (10,000 entries, all issuers)
  // still holds: each fresh run takes the next half of the pool (12,000, more than a run sends),
  // so the tokens it presents were last verified at least 12,000 verifications earlier.
  const pool = smoke ? 400 : 24_000;
  const tokens = Object.fromEntries(
    algs.map((alg) => [alg, mint(alg, keys[alg], ALGS[alg].issuer, pool, 0)]),
  );
  // Two cursors per algorithm: one for the fresh server's bearer tokens, one for the X-Raw-Token
  // of the others (which never reach a verifier's cache).
  const cursor = Object.fromEntries(algs.map((alg) => [alg, 0]));
  const rawCursor = Object.fromEntries(algs.map((alg) => [alg, 0]));
  const dir = mkdtempSync(join(tmpdir(), 'shield-miss-'));
  const bodyFile = join(dir, 'body.json');
  writeFileSync(bodyFile, BODY);
  const tokensFile = join(dir, 'tokens.txt');

  const children = [];
  const devNull = openSync('/dev/null', 'w');
  const setup = { issuers, keyPem: server.keyPem, certPem: server.certPem };
  try {
    // Two identical servers, one for each kind of load, so that each one's CPU profile (with
    // BENCH_PROFILE=1) holds one path only: reused tokens, or fresh ones.
    const apps = {};
    for (const kind of KINDS) {
      apps[kind] = await startChild({
        script: SCRIPT,
        kind,
        setup,
        cpu: SERVER_CPU,
        logFd: devNull,
        children,
        ...(profileDir ? { profileDir } : {}),
      });
    }
    const raw = await startChild({
      script: SCRIPT,
      kind: 'raw',
      setup,
      cpu: SERVER_CPU,
      logFd: devNull,
      children,
    });
    const cpuNow = async (kind) => cpuMicros(await ask(apps[kind].child, 'cpu', 'cpu'));

    /** One wrk run with these token pairs (`bearer raw`, mode 0600); server CPU µs per request. */
    const load = async (kind, pairs, seconds) => {
      writeFileSync(tokensFile, `${pairs.join('\n')}\n`, { mode: 0o600 });
      const before = await cpuNow(kind);
      const run = await runWrk({
        url: `https://127.0.0.1:${apps[kind].port}${ROUTE}`,
        script: WRK_SCRIPT,
        scriptArgs: [bodyFile, tokensFile],
        seconds,
        connections: CONNECTIONS,
        cpu: WRK_CPU,
      });
      const after = await cpuNow(kind);
      if (run.non2xx > 0 || run.requests === 0) {
        throw new Error(`${run.non2xx} of ${run.requests} requests refused: a token was not accepted`);
      }
      return {
        requests: run.requests,
        rps: run.requests / (run.durationUs / 1e6),
        cpuUs: (after - before) / run.requests,
      };
    };
    const nextHalf = (alg, cursors) => {
      // The next `pool / 2` tokens after the cursor: the cache's 10,000 entries never reach back.
      const all = tokens[alg];
      const half = Math.floor(all.length / 2);
      const start = cursors[alg];
      cursors[alg] = (start + half) % all.length;
      return [...all.slice(start, start + half), ...all.slice(0, Math.max(0, start + half - all.length))];
    };
    const freshSlice = (alg) => nextHalf(alg, cursor);

    // Each load: the bearer token first, the other in X-Raw-Token; a new one from the pool each.
    const reusedWith = (reused, alg) => nextHalf(alg, rawCursor).map((t) => `${reused} ${t}`);
    const freshWith = (reused, alg) => freshSlice(alg).map((t) => `${t} ${reused}`);
    const loads3 = async (alg, reused, seconds) => {
      const out = {};
      out.reused = await load('reused', reusedWith(reused, alg), seconds);
      out.fresh = await load('fresh', freshWith(reused, alg), seconds);
      for (const kind of KINDS.slice(2)) {
        await ask(apps[kind].child, { rawAlg: alg }, 'rawAlgSet');
        out[kind] = await load(kind, reusedWith(reused, alg), seconds);
      }
      return out;
    };
    // Warm-up: JIT, TLS sessions, the key imports, every path once (not in a smoke run, whose
    // one round already runs every path and whose figures mean nothing).
    if (!smoke) for (const alg of algs) await loads3(alg, tokens[alg][0], 1);
    const rows = Object.fromEntries(algs.map((alg) => [alg, []]));
    const loads = [loadavg()[0]];
    for (let round = 0; round < ROUNDS; round++) {
      // A different algorithm first in each round.
      for (const alg of algs.map((_, j) => algs[(round + j) % algs.length])) {
        const { reused, fresh, control, hot, floor } = await loads3(alg, tokens[alg][1], SECONDS);
        const rawLoopUs = await ask(raw.child, { measure: { alg, ms: smoke ? 200 : 1000 } }, 'raw');
        rows[alg].push({
          reusedCpuUs: reused.cpuUs,
          freshCpuUs: fresh.cpuUs,
          controlCpuUs: control.cpuUs,
          missUs: fresh.cpuUs - reused.cpuUs,
          hotCpuUs: hot?.cpuUs ?? NaN,
          rawInPlaceUs: control.cpuUs - reused.cpuUs,
          rawHotInPlaceUs: hot ? hot.cpuUs - reused.cpuUs : NaN,
          rawLoopUs,
          overheadUs: fresh.cpuUs - control.cpuUs,
          overheadHotUs: hot ? fresh.cpuUs - hot.cpuUs : NaN,
          ...(floor ? { floorOverRawUs: floor.cpuUs - control.cpuUs } : {}),
          overheadOverLoopUs: fresh.cpuUs - reused.cpuUs - rawLoopUs,
          reusedRps: Math.round(reused.rps),
          freshRps: Math.round(fresh.rps),
          controlRps: Math.round(control.rps),
          hotRps: hot ? Math.round(hot.rps) : NaN,
          load1m: loadavg()[0],
        });
      }
      loads.push(loadavg()[0]);
    }
    const stats = {
      reused: await ask(apps.reused.child, 'stats', 'stats'),
      fresh: await ask(apps.fresh.child, 'stats', 'stats'),
      control: await ask(apps.control.child, 'stats', 'stats'),
      ...(apps.hot ? { hot: await ask(apps.hot.child, 'stats', 'stats') } : {}),
    };
    if (!smoke && stats.fresh.cacheHits > 0) {
      throw new Error(`the fresh server found ${stats.fresh.cacheHits} tokens in its cache: not all misses`);
    }
    const r1 = (x) => Math.round(x * 10) / 10;
    const med = (list, k) => r1(median(list.map((r) => r[k])));
    const range = (list, k) => [
      r1(Math.min(...list.map((r) => r[k]))),
      r1(Math.max(...list.map((r) => r[k]))),
    ];
    const summary = Object.fromEntries(
      algs.map((alg) => {
        const list = rows[alg];
        return [
          alg,
          {
            reusedCpuUs: med(list, 'reusedCpuUs'),
            freshCpuUs: med(list, 'freshCpuUs'),
            controlCpuUs: med(list, 'controlCpuUs'),
            hotCpuUs: med(list, 'hotCpuUs'),
            missUs: med(list, 'missUs'),
            rawInPlaceUs: med(list, 'rawInPlaceUs'),
            rawHotInPlaceUs: med(list, 'rawHotInPlaceUs'),
            rawLoopUs: med(list, 'rawLoopUs'),
            overheadUs: med(list, 'overheadUs'),
            overheadRangeUs: range(list, 'overheadUs'),
            overheadHotUs: med(list, 'overheadHotUs'),
            ...(list[0].floorOverRawUs !== undefined
              ? {
                  floorOverRawUs: med(list, 'floorOverRawUs'),
                  floorOverRawRangeUs: range(list, 'floorOverRawUs'),
                }
              : {}),
            overheadOverLoopUs: med(list, 'overheadOverLoopUs'),
            met: median(list.map((r) => r.overheadUs)) <= 20,
            rounds: list.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, r1(v)]))),
          },
        ];
      }),
    );
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      openssl: process.versions.openssl,
      adapter: ADAPTER,
      cpuModel: cpus()[0]?.model,
      loadAverage1m: { min: r1(Math.min(...loads)), max: r1(Math.max(...loads)) },
      pinning: { server: SERVER_CPU, wrk: WRK_CPU },
      wrk: { threads: 1, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS },
      verifier: stats,
      algorithms: summary,
    };
    console.log(
      table(
        [
          'alg',
          'hit µs/req',
          'miss µs/req',
          'miss − hit µs',
          'raw verify of the new token in place µs',
          'miss − (hit + raw in place) µs (range)',
          '≤ 20?',
          'raw verify of a hot sample in place µs',
          'miss − (hit + hot raw) µs',
          'raw verify in a loop µs',
        ],
        algs.map((alg) => {
          const s = summary[alg];
          return [
            alg,
            s.reusedCpuUs,
            s.freshCpuUs,
            s.missUs,
            s.rawInPlaceUs,
            `${s.overheadUs} (${s.overheadRangeUs[0]} to ${s.overheadRangeUs[1]})`,
            smoke ? 'smoke run' : s.met ? 'yes' : 'no',
            Number.isNaN(s.rawHotInPlaceUs) ? '—' : s.rawHotInPlaceUs,
            Number.isNaN(s.overheadHotUs) ? '—' : s.overheadHotUs,
            s.rawLoopUs,
          ];
        }),
      ),
    );
    for (const alg of algs) {
      const s = summary[alg];
      if (s.floorOverRawUs === undefined) continue;
      console.log(
        `floor ${alg}: the least caching verifier − (hit + raw in place) ${s.floorOverRawUs} µs (${s.floorOverRawRangeUs[0]} to ${s.floorOverRawRangeUs[1]})`,
      );
    }
    console.log(
      `${process.version} (OpenSSL ${process.versions.openssl}), ${ADAPTER}, load ${result.loadAverage1m.min} to ${result.loadAverage1m.max}; verifier ${JSON.stringify(stats)}`,
    );
    const out =
      process.env.BENCH_OUT ??
      (smoke ? '-' : fileURLToPath(new URL('./cache-miss.results.json', import.meta.url)));
    if (out !== '-') writeFileSync(out, await formatted(out, JSON.stringify(result, null, 2)));
  } finally {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] !== '--serve') await main();
else if (process.argv[3] === 'raw') await rawVerify();
else if (['reused', 'fresh', 'control', 'hot', 'floor'].includes(process.argv[3])) await serve();
else throw new Error(`unknown server kind "${process.argv[3]}"`);
