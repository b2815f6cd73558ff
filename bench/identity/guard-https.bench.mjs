// The same HTTPS route with and without the Shield identity guard, one server process per app.
//
//   npm run build && node bench/identity/guard-https.bench.mjs
//
// Environment: BENCH_ROUNDS (5), BENCH_SECONDS (4), BENCH_CONNECTIONS (32), BENCH_SERVER_CPU (0),
// BENCH_WRK_CPU (1), BENCH_MODE (concurrent | sequential), BENCH_APPS (a comma-separated subset of
// the apps below), BENCH_PROFILE=1 (each
// server writes a V8 CPU profile to /tmp/shield-guard-prof/ when it exits), BENCH_ADAPTER (express |
// fastify: Nest's platform under every app).
//
// Why a script and separate processes rather than vitest bench: each app gets its own process, so
// its CPU time (process.cpuUsage, asked over IPC before and after each wrk run) is its own and
// nothing else's (no vitest threads, no other app's GC); servers and wrk are pinned to different
// cores with taskset; and the audit sinks write to a real stdout (a file: /dev/null), as in
// production.
//
// Apps (Express, TLS 1.3, dev-PKI server certificate, client certificates requested but optional),
// all serving GET /v2/models/demo/infer with the same small JSON body:
//   unguarded       no IdentityModule (the baseline);
//   nest-guard      no IdentityModule, a global guard that returns `true` (Nest's own guard cost);
//   guarded         IdentityModule (one inline ES256 issuer), @RequireScopes('models:infer'),
//                   default audit sink (JsonLinesAuditSink on stdout, batched: #17);
//   guarded-logger  the same with LoggerAuditSink (one line per decision through Nest's Logger,
//                   the default until #17);
//   guarded-nolog   the same with an audit sink that drops events (the guard's own cost).
// wrk (1 thread, keep-alive) sends the same bearer token on every request. Each round compares
// every app with the baseline, starting with a different app each round:
//   concurrent (default)  the app and the baseline are loaded at the same time, both servers on the
//                         server core: whatever else the machine does hits both alike, so the
//                         ratio is stable on a shared machine (its spread is a few %). Sharing one
//                         core also costs both servers cache misses: every cost, the guard's
//                         included, is about 1.2 to 1.5 times its cost on a core of its own.
//   sequential            the baseline, then the app, each alone: the conditions of production,
//                         but on a shared machine the spread between rounds (±10 %) hides a
//                         difference of a few %.
// Reported per app: median req/s and CPU µs per request, and the median over the rounds of
// (baseline CPU per request / app CPU per request): the throughput ratio of a CPU-bound server.
import 'reflect-metadata';
import { spawn, execFileSync, fork } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
// The verifier's figures (cache and memo hits) show the measured path is the reused-token one.
// eslint-disable-next-line no-restricted-imports -- a figure of the verifier under measurement
import { TOKEN_VERIFIER } from '@inference-shield/identity/internal';

const ISSUER = 'https://idp.bench.local';
const AUDIENCE = 'inference';
const BODY = { model: 'demo', outputs: [0.1, 0.7, 0.2] };
// BENCH_ADAPTER=fastify serves the apps with Nest's Fastify adapter instead of Express.
const ADAPTER = process.env.BENCH_ADAPTER ?? 'express';
if (!['express', 'fastify'].includes(ADAPTER)) throw new Error(`BENCH_ADAPTER: unknown adapter "${ADAPTER}"`);
const KNOWN_APPS = ['nest-guard', 'guarded', 'guarded-logger', 'guarded-nolog'];
// BENCH_APPS=guarded,guarded-nolog runs a subset; `unguarded` is always measured (the baseline).
const asked = process.env.BENCH_APPS?.split(',') ?? KNOWN_APPS;
for (const a of asked) if (!KNOWN_APPS.includes(a)) throw new Error(`BENCH_APPS: unknown app "${a}"`);
const APPS = ['unguarded', ...KNOWN_APPS.filter((a) => asked.includes(a))];

/** Child: one Nest app; answers `cpu` with its CPU time so far, `close` by exiting. */
async function serve(kind) {
  const { Controller, Get, Injectable, Module } = await import('@nestjs/common');
  const { APP_GUARD, NestFactory } = await import('@nestjs/core');
  const identity = await import('@inference-shield/identity');
  const setup = await new Promise((resolve) => process.once('message', resolve));

  class DemoController {
    infer() {
      return BODY;
    }
  }
  const handlerDecorators = [Get('infer')];
  if (kind.startsWith('guarded')) handlerDecorators.push(identity.RequireScopes('models:infer'));
  Reflect.decorate(
    handlerDecorators,
    DemoController.prototype,
    'infer',
    Object.getOwnPropertyDescriptor(DemoController.prototype, 'infer'),
  );
  Reflect.decorate([Controller('v2/models/demo')], DemoController);

  const imports = [];
  const providers = [];
  if (kind === 'nest-guard') {
    class TrueGuard {
      canActivate() {
        return true;
      }
    }
    Reflect.decorate([Injectable()], TrueGuard);
    providers.push({ provide: APP_GUARD, useClass: TrueGuard });
  }
  if (kind.startsWith('guarded')) {
    imports.push(
      identity.IdentityModule.forRoot({
        oidc: {
          issuers: [
            { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [setup.jwk] }, algorithms: ['ES256'] },
          ],
        },
        ...(kind === 'guarded-logger' ? { audit: { sink: new identity.LoggerAuditSink() } } : {}),
        ...(kind === 'guarded-nolog' ? { audit: { sink: { record: () => undefined } } } : {}),
      }),
    );
  }
  class AppModule {}
  Reflect.decorate([Module({ imports, providers, controllers: [DemoController] })], AppModule);

  const httpsOptions = {
    key: setup.keyPem,
    cert: setup.certPem,
    ca: setup.caPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  };
  const app =
    ADAPTER === 'fastify'
      ? await NestFactory.create(
          AppModule,
          new (await import('@nestjs/platform-fastify')).FastifyAdapter({ https: httpsOptions }),
        )
      : await NestFactory.create(AppModule, { httpsOptions });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address();
  process.on('message', async (msg) => {
    if (msg === 'cpu') process.send({ cpu: process.cpuUsage() });
    if (msg === 'stats') {
      const stats = kind.startsWith('guarded') ? app.get(TOKEN_VERIFIER).stats() : {};
      process.send({ stats: { cacheHits: stats.cacheHits, connectionMemoHits: stats.connectionMemoHits } });
    }
    if (msg === 'close') {
      await app.close();
      process.exit(0); // flushes --cpu-prof
    }
  });
  process.send({ port });
}

function request(child, message, key) {
  return new Promise((resolve) => {
    const onMessage = (m) => {
      if (m && typeof m === 'object' && key in m) {
        child.off('message', onMessage);
        resolve(m[key]);
      }
    };
    child.on('message', onMessage);
    child.send(message);
  });
}

function runWrk(port, token, seconds, connections, cpu) {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '-H', `Authorization: Bearer ${token}`];
    const url = `https://127.0.0.1:${port}/v2/models/demo/infer`;
    const child = spawn('taskset', ['-c', String(cpu), 'wrk', ...args, url]);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('close', () => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const total = /(\d+) requests in/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      if (!rps || !total) return reject(new Error(`wrk output not understood:\n${out}`));
      if (non2xx) return reject(new Error(`${non2xx[1]} requests refused: the token was not accepted`));
      resolve({ rps: Number(rps[1]), requests: Number(total[1]) });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const round1 = (x) => Math.round(x * 10) / 10;

async function main() {
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
  const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
  const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
  const SERVER_CPU = Number(process.env.BENCH_SERVER_CPU ?? 0);
  const WRK_CPU = Number(process.env.BENCH_WRK_CPU ?? 1);
  const profile = process.env.BENCH_PROFILE === '1';
  const CONCURRENT = (process.env.BENCH_MODE ?? 'concurrent') === 'concurrent';

  const { DevCertificateAuthority } = await import('@inference-shield/dev-pki');
  const { exportJWK } = await import('jose');
  const ca = await DevCertificateAuthority.create();
  const server = await ca.issueServer();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' };
  const now = Math.floor(Date.now() / 1000);
  const b64 = (s) => Buffer.from(s).toString('base64url');
  const header = { alg: 'ES256', typ: 'at+jwt', kid: 'bench' };
  const claims = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'bench-client',
    iat: now,
    exp: now + 3600,
    scope: 'models:infer',
  };
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
  const signature = cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const token = `${input}.${b64(signature)}`;
  const setup = { jwk, keyPem: server.keyPem, certPem: server.certPem, caPem: ca.certPem };

  const devNull = openSync('/dev/null', 'w');
  const servers = {};
  if (profile) mkdirSync('/tmp/shield-guard-prof', { recursive: true });
  try {
    for (const kind of APPS) {
      const execArgv = profile
        ? ['--cpu-prof', `--cpu-prof-dir=/tmp/shield-guard-prof`, `--cpu-prof-name=${kind}.cpuprofile`]
        : [];
      const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], {
        stdio: ['ignore', devNull, 'inherit', 'ipc'],
        execArgv,
      });
      // All threads of the server (main, libuv pool, V8 helpers) on one core, wrk on another.
      execFileSync('taskset', ['-a', '-p', '-c', String(SERVER_CPU), String(child.pid)], { stdio: 'ignore' });
      const exited = new Promise((_, reject) =>
        child.once('exit', (code) => reject(new Error(`server ${kind} exited (${code}) before listening`))),
      );
      servers[kind] = { child, port: undefined, runs: [] };
      servers[kind].port = await Promise.race([request(child, setup, 'port'), exited]);
    }
    const cpuOf = async (kind) => {
      const usage = await request(servers[kind].child, 'cpu', 'cpu');
      return usage.user + usage.system;
    };
    /** Runs wrk against the given apps at the same time; per app: req/s and its CPU µs per request. */
    const measure = async (kinds) => {
      const before = await Promise.all(kinds.map(cpuOf));
      const runs = await Promise.all(
        kinds.map((kind) => runWrk(servers[kind].port, token, SECONDS, CONNECTIONS, WRK_CPU)),
      );
      const after = await Promise.all(kinds.map(cpuOf));
      return runs.map((run, k) => ({
        rps: run.rps,
        requests: run.requests,
        cpuUsPerRequest: round1(((after[k] ?? 0) - (before[k] ?? 0)) / run.requests),
      }));
    };
    const others = APPS.filter((kind) => kind !== 'unguarded');
    /** Each app's runs, and the unguarded run each one is compared with. */
    const pairs = Object.fromEntries(APPS.map((kind) => [kind, []]));
    const load = [loadavg()[0]];
    for (const kind of APPS) await measure([kind]); // warm-up: JIT, TLS, caches
    for (let i = 0; i < ROUNDS; i++) {
      // A different app first each round: none is always measured right after another.
      const order = others.map((_, j) => others[(i + j) % others.length]);
      for (const kind of order) {
        if (CONCURRENT) {
          // Both at once, sharing the server core: whatever else the machine does hits both alike.
          const [base, run] = await measure(['unguarded', kind]);
          pairs[kind].push({ base, run });
          pairs.unguarded.push({ base, run: base });
        } else {
          const [base] = await measure(['unguarded']);
          const [run] = await measure([kind]);
          pairs[kind].push({ base, run });
          pairs.unguarded.push({ base, run: base });
        }
      }
      load.push(loadavg()[0]);
    }
    const summary = {};
    for (const kind of APPS) {
      const runs = pairs[kind].map((p) => p.run);
      const bases = pairs[kind].map((p) => p.base);
      summary[kind] = {
        medianRps: median(runs.map((r) => r.rps)),
        medianCpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
        rpsRatio: Number(median(pairs[kind].map((p) => p.run.rps / p.base.rps)).toFixed(3)),
        cpuRatio: Number(
          (median(bases.map((r) => r.cpuUsPerRequest)) / median(runs.map((r) => r.cpuUsPerRequest))).toFixed(
            3,
          ),
        ),
        // Pair by pair, then the median: slow drifts of a shared machine cancel out.
        pairedCpuRatio: Number(
          median(pairs[kind].map((p) => p.base.cpuUsPerRequest / p.run.cpuUsPerRequest)).toFixed(3),
        ),
        // How the verifier answered (memo: same connection, same header; cache: SHA-256 lookup).
        verifier: await request(servers[kind].child, 'stats', 'stats'),
        pairs: pairs[kind],
      };
    }
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      loadAverage1m: { min: Math.min(...load), max: Math.max(...load) },
      pinning: { server: SERVER_CPU, wrk: WRK_CPU },
      mode: CONCURRENT ? 'concurrent' : 'sequential',
      wrk: { threads: 1, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS },
      apps: summary,
    };
    writeFileSync(new URL('./guard-results.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
    console.log('| app | median req/s | median CPU µs/req | req/s ratio | CPU ratio | paired CPU ratio |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const kind of APPS) {
      const s = summary[kind];
      console.log(
        `| ${kind} | ${s.medianRps} | ${s.medianCpuUsPerRequest} | ${s.rpsRatio} | ${s.cpuRatio} | ${s.pairedCpuRatio} |`,
      );
    }
    for (const kind of APPS.filter((k) => k.startsWith('guarded'))) {
      console.log(`${kind}: verifier ${JSON.stringify(summary[kind].verifier)}`);
    }
    console.log(
      `load average (1 min) ${result.loadAverage1m.min.toFixed(2)} to ${result.loadAverage1m.max.toFixed(2)}`,
    );
  } finally {
    await Promise.all(
      Object.values(servers).map(({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        return new Promise((resolve) => (child.once('exit', resolve), child.send('close')));
      }),
    );
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3]);
else await main();
