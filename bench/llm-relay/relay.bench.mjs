// LLM relay benchmark (issue #14 §8). Build first (`npm run build`), then:
//
//   node bench/llm-relay/relay.bench.mjs          # writes bench/llm-relay/results.json, prints a summary
//
// Processes, all on loopback:
//   - the upstream: a small OpenAI-compatible HTTPS server requiring a client certificate
//     (mTLS), answering chat completions with a fixed body and `usage` (the model's own work is not
//     what is measured);
//   - three relays, each its own process: `createHttpsApp` + IdentityModule (mTLS workloads) +
//     UpstreamModule + LlmRelayModule, with no budget, with budgets in memory, with budgets in
//     Redis (a real `redis-server`);
//   - this process, the caller: the real `openai` SDK, over our pooled mTLS fetch, either straight
//     to the upstream ("direct") or to a relay, N calls in flight.
//
// Rounds alternate direct / none / memory / redis so that noise hits each alike; medians count.
// Measured per call: the CPU time of the relay process (utime + stime from /proc/<pid>/stat over
// the calls it served), the CPU time of this process (process.cpuUsage, the SDK's side), and the
// latency of each call as the caller sees it (p50, p90). Ratios: the relay's CPU per call over the
// caller's CPU per direct SDK call; the p50 added by the budget check (memory, Redis) over the
// relay without budgets.
//
// Pinning (taskset): the caller on CPU 1; upstream, relays and redis-server on CPU 0. BENCH_PIN=0
// turns it off. Environment: BENCH_SECONDS (per round, 3), BENCH_ROUNDS (3), BENCH_CONCURRENCY (8),
// BENCH_OUT (results path; "-" for stdout only).
import { execFileSync, fork, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { formatted } from '../support/bench-kit.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const int = (name, fallback) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} must be a positive integer`);
  return v;
};
const SECONDS = int('BENCH_SECONDS', 3);
const ROUNDS = int('BENCH_ROUNDS', 3);
const CONCURRENCY = int('BENCH_CONCURRENCY', 8);
const PIN = process.env.BENCH_PIN !== '0';
const VARIANTS = ['direct', 'none', 'memory', 'redis'];
const API_KEY = 'sk-bench-relay-key-0001';

const role = process.argv[2] ?? 'main';
if (role === 'upstream') await upstreamRole();
else if (role === 'relay') await relayRole();
else await main();

// ---------------------------------------------------------------------------------------------
/** A chat completion in OpenAI's shape, the same every time (about 450 bytes). */
async function upstreamRole() {
  const pki = JSON.parse(process.env.BENCH_PKI);
  const answer = (model) =>
    JSON.stringify({
      id: 'chatcmpl-bench',
      object: 'chat.completion',
      created: 1_735_689_600,
      model,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'shield model token secure stream answer prompt vector',
            refusal: null,
          },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
    });
  const server = createHttpsServer(
    {
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
      ca: readFileSync(pki.ca),
      requestCert: true,
      rejectUnauthorized: true,
      keepAliveTimeout: 60_000,
    },
    (req, res) => {
      if (req.headers.authorization !== `Bearer ${API_KEY}`) {
        res.writeHead(401).end();
        return;
      }
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const out = answer(body.model);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      });
    },
  );
  server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }));
}

// ---------------------------------------------------------------------------------------------
async function relayRole() {
  await import('reflect-metadata');
  const { Module } = await import('@nestjs/common');
  const { createHttpsApp } = await import('@inference-shield/https');
  const { IdentityModule, JsonLinesAuditSink } = await import('@inference-shield/identity');
  const { UpstreamModule } = await import('@inference-shield/upstream');
  const { LlmRelayModule, RedisBudgetStore, MemoryBudgetStore } = await import('@inference-shield/llm-relay');
  const cfg = JSON.parse(process.env.BENCH_RELAY);
  const pki = cfg.pki;
  // A real sink writing JSON lines (to /dev/null): audit and usage events cost what they cost.
  const sink = new JsonLinesAuditSink(createWriteStream('/dev/null'));
  let budgets;
  let redis;
  if (cfg.budget === 'memory') budgets = { store: new MemoryBudgetStore() };
  if (cfg.budget === 'redis') {
    const { Redis } = await import('ioredis');
    redis = new Redis(cfg.redisUrl, { maxRetriesPerRequest: 1 });
    budgets = { store: new RedisBudgetStore({ client: redis }) };
  }
  const limits = {
    requestsPerMinute: 100_000_000,
    tokensPerMinute: 1_000_000_000,
    tokensPerDay: 1_000_000_000,
  };
  class RelayBenchModule {}
  Module({
    imports: [
      IdentityModule.forRoot({ mtls: { trustDomains: ['shield.local'] }, audit: { sink } }),
      UpstreamModule.forRoot({
        upstreams: {
          llm: {
            baseUrl: `https://localhost:${cfg.upstreamPort}/v1`,
            ca: { file: pki.ca },
            clientCertificate: { cert: pki.clientCert, key: pki.clientKey, watch: false },
            apiKey: { file: pki.apiKeyFile },
          },
        },
      }),
      LlmRelayModule.forRoot({
        upstreams: { llm: {} },
        models: { 'bench-chat': { upstream: 'llm', model: 'upstream-chat' } },
        access: { '*': [{ spiffeIds: ['spiffe://shield.local/bench-caller'] }] },
        ...(budgets ? { budgets: { ...budgets, perPrincipal: limits } } : {}),
      }),
    ],
  })(RelayBenchModule);
  const app = await createHttpsApp(RelayBenchModule, {
    tls: { cert: pki.serverCert, key: pki.serverKey },
    mtls: { mode: 'optional', ca: { file: pki.ca } },
    reload: { watch: false, sighup: false },
    nest: { logger: false },
  });
  const { port } = await app.listen(0, '127.0.0.1');
  process.send?.({ port });
  process.on('message', async (m) => {
    if (m === 'stop') {
      await app.close();
      redis?.disconnect();
      process.exit(0);
    }
  });
}

// ---------------------------------------------------------------------------------------------
async function main() {
  const { createTestPki } = await import('@inference-shield/dev-pki');
  const { createUpstreamRegistry } = await import('@inference-shield/upstream');
  const { default: OpenAI } = await import('openai');
  const dir = mkdtempSync(join(tmpdir(), 'relay-bench-'));
  const children = [];
  try {
    const pkiFull = await createTestPki(dir);
    const caller = await pkiFull.ca.authority.issueClient({
      spiffeId: 'spiffe://shield.local/bench-caller',
      commonName: 'bench-caller',
    });
    const callerCert = join(dir, 'caller.pem');
    const callerKey = join(dir, 'caller-key.pem');
    writeFileSync(callerCert, caller.certPem);
    writeFileSync(callerKey, caller.keyPem, { mode: 0o600 });
    const apiKeyFile = join(dir, 'api-key');
    writeFileSync(apiKeyFile, `${API_KEY}\n`, { mode: 0o600 });
    const pki = {
      ca: pkiFull.ca.cert,
      serverCert: pkiFull.server.cert,
      serverKey: pkiFull.server.key,
      clientCert: pkiFull.client.cert,
      clientKey: pkiFull.client.key,
      apiKeyFile,
    };
    if (PIN) pin(process.pid, 1);

    const upstream = await start('upstream', { BENCH_PKI: JSON.stringify(pki) }, children);
    const redisPort = await freePort();
    const redis = spawn(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    children.push({ kill: () => redis.kill('SIGTERM'), pid: redis.pid });
    if (PIN) pin(redis.pid, 0);
    await sleep(300);
    const relays = {};
    for (const budget of ['none', 'memory', 'redis']) {
      relays[budget] = await start(
        'relay',
        {
          BENCH_RELAY: JSON.stringify({
            pki,
            budget,
            upstreamPort: upstream.port,
            redisUrl: `redis://127.0.0.1:${redisPort}`,
          }),
        },
        children,
      );
    }

    // The caller's clients: the SDK over our pooled mTLS fetch, to the upstream and to each relay
    // (the relay trusts the caller's SPIFFE certificate; the upstream, the PKI's client).
    const registry = await createUpstreamRegistry({
      upstreams: {
        direct: {
          baseUrl: `https://localhost:${upstream.port}/v1`,
          ca: { file: pki.ca },
          clientCertificate: { cert: pki.clientCert, key: pki.clientKey, watch: false },
          apiKey: { file: apiKeyFile },
          pool: { connections: CONCURRENCY },
        },
        ...Object.fromEntries(
          Object.entries(relays).map(([name, r]) => [
            name,
            {
              baseUrl: `https://localhost:${r.port}/v1`,
              ca: { file: pki.ca },
              clientCertificate: { cert: callerCert, key: callerKey, watch: false },
              pool: { connections: CONCURRENCY },
            },
          ]),
        ),
      },
    });
    const sdk = Object.fromEntries(
      VARIANTS.map((v) => {
        const client = registry.client(v);
        return [
          v,
          new OpenAI({
            baseURL: client.baseUrl,
            apiKey: 'set-by-the-client',
            fetch: client.fetch,
            maxRetries: 0,
          }),
        ];
      }),
    );
    const model = { direct: 'upstream-chat', none: 'bench-chat', memory: 'bench-chat', redis: 'bench-chat' };
    const call = (v) =>
      sdk[v].chat.completions.create({
        model: model[v],
        messages: [{ role: 'user', content: 'Is the channel encrypted end to end?' }],
        max_tokens: 16,
      });
    // Warm-up: connections, JIT, the Lua script loaded.
    for (const v of VARIANTS) await run(() => call(v), CONCURRENCY, 1);

    const rounds = Object.fromEntries(VARIANTS.map((v) => [v, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of VARIANTS) {
        const pid = v === 'direct' ? undefined : relays[v].pid;
        const before = {
          relay: pid ? cpuMicros(pid) : 0,
          upstream: cpuMicros(upstream.pid),
          self: process.cpuUsage(),
        };
        const res = await run(() => call(v), CONCURRENCY, SECONDS);
        const self = process.cpuUsage(before.self);
        rounds[v].push({
          calls: res.calls,
          rps: res.calls / res.seconds,
          p50Ms: res.p50,
          p90Ms: res.p90,
          callerCpuUs: (self.user + self.system) / res.calls,
          relayCpuUs: pid ? (cpuMicros(pid) - before.relay) / res.calls : 0,
          upstreamCpuUs: (cpuMicros(upstream.pid) - before.upstream) / res.calls,
          errors: res.errors,
        });
      }
    }
    // The budget check alone, as the relay makes it before each call (one `reserve`), from this
    // process: sequential calls, so each is one round trip to Redis (or none, in memory).
    const { Redis } = await import('ioredis');
    const { RedisBudgetStore, MemoryBudgetStore } = await import('@inference-shield/llm-relay');
    const redisClient = new Redis(`redis://127.0.0.1:${redisPort}`, { maxRetriesPerRequest: 1 });
    const limits = { requestsPerMinute: 1e9, tokensPerMinute: 1e12, tokensPerDay: 1e12 };
    const check = async (store) => {
      for (let i = 0; i < 500; i++) await store.reserve('mtls\0bench\0warm', limits, 100, Date.now());
      const times = [];
      for (let i = 0; i < 5000; i++) {
        const t = performance.now();
        await store.reserve('mtls\0bench\0caller', limits, 100, Date.now());
        times.push(performance.now() - t);
      }
      return summary(times);
    };
    const memoryStore = new MemoryBudgetStore();
    const budgetCheck = {
      memory: await check(memoryStore),
      redis: await check(new RedisBudgetStore({ client: redisClient })),
    };
    await memoryStore.close();
    redisClient.disconnect();

    const med = (v, k) => median(rounds[v].map((x) => x[k]));
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      openssl: process.versions.openssl,
      cpus: cpus().length,
      loadavg: loadavg(),
      pinned: PIN,
      seconds: SECONDS,
      rounds: ROUNDS,
      concurrency: CONCURRENCY,
      medians: Object.fromEntries(
        VARIANTS.map((v) => [
          v,
          Object.fromEntries(
            ['rps', 'p50Ms', 'p90Ms', 'callerCpuUs', 'relayCpuUs', 'upstreamCpuUs'].map((k) => [
              k,
              med(v, k),
            ]),
          ),
        ]),
      ),
      budgetCheckMs: budgetCheck,
      perRound: rounds,
    };
    const m = result.medians;
    result.ratios = {
      relayCpuOverDirectSdkCpu: m.none.relayCpuUs / m.direct.callerCpuUs,
      relayWithRedisCpuOverDirectSdkCpu: m.redis.relayCpuUs / m.direct.callerCpuUs,
      p50AddedByMemoryBudgetMs: m.memory.p50Ms - m.none.p50Ms,
      p50AddedByRedisBudgetMs: m.redis.p50Ms - m.none.p50Ms,
      p50RedisOverNone: m.redis.p50Ms / m.none.p50Ms,
      p50NoneOverDirect: m.none.p50Ms / m.direct.p50Ms,
    };
    // The same ratios within each round (the variants ran seconds apart, under the same load),
    // and their median: on a shared machine these are steadier than ratios of medians.
    const paired = rounds.direct.map((d, i) => ({
      relayCpuOverDirectSdkCpu: rounds.none[i].relayCpuUs / d.callerCpuUs,
      relayWithRedisCpuOverDirectSdkCpu: rounds.redis[i].relayCpuUs / d.callerCpuUs,
      p50AddedByMemoryBudgetMs: rounds.memory[i].p50Ms - rounds.none[i].p50Ms,
      p50AddedByRedisBudgetMs: rounds.redis[i].p50Ms - rounds.none[i].p50Ms,
    }));
    result.pairedRatios = {
      perRound: paired,
      median: Object.fromEntries(Object.keys(paired[0]).map((k) => [k, median(paired.map((x) => x[k]))])),
    };
    const text = JSON.stringify(result, null, 2);
    const out = process.env.BENCH_OUT ?? join(here, 'results.json');
    if (out !== '-') writeFileSync(out, await formatted(out, `${text}\n`));
    console.log(
      JSON.stringify(
        {
          medians: result.medians,
          ratios: result.ratios,
          budgetCheckMs: budgetCheck,
          loadavg: result.loadavg,
        },
        null,
        2,
      ),
    );
    await registry.close();
  } finally {
    for (const c of children) {
      try {
        if (c.send) c.send('stop');
        else c.kill();
      } catch {
        // already gone
      }
    }
    await sleep(500);
    for (const c of children) {
      try {
        c.kill?.('SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Pin a process (all its threads) to one CPU with taskset; false when taskset is missing. */
function pin(pid, cpu) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** utime + stime of a process, in µs (Linux /proc). */
function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / 100) * 1e6;
}

/** Fork this script in `which` role, pinned to CPU 0; resolves with its port and pid. */
function start(which, env, children) {
  const child = fork(fileURLToPath(import.meta.url), [which], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: root,
  });
  children.push(child);
  if (PIN) pin(child.pid, 0);
  return new Promise((resolvePort, reject) => {
    child.once('message', (m) => resolvePort({ port: m.port, pid: child.pid }));
    child.once('exit', (code) => reject(new Error(`${which} exited with ${code}`)));
  });
}

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createNetServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** `concurrency` loops calling `fn` for `seconds`; latencies of every call. */
async function run(fn, concurrency, seconds) {
  const until = performance.now() + seconds * 1000;
  const latencies = [];
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        try {
          await fn();
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const s = latencies.sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { calls: s.length, seconds: (performance.now() - started) / 1000, p50: q(0.5), p90: q(0.9), errors };
}

function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99) };
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
