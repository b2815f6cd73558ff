/**
 * Benchmark: the same Nest route over plain HTTP and over the HTTPS bootstrap, in one run.
 *
 *   npx vitest bench --run bench/https/https-bootstrap.bench.ts
 *
 * It compiles the libs (`npm run build`
 * does), then starts bench-servers.mjs in its own process: the same Express module as plain HTTP
 * (`NestFactory.create`), as Nest's own `httpsOptions` with the bootstrap's certificate and TLS
 * policy but none of its gates, and through `createHttpsApp`. wrk (one thread, keep-alive
 * connections) POSTs a 1 KiB JSON body and gets a 1 KiB JSON answer. Rounds alternate
 * plain / plainSame / nestHttps / https and the medians are compared. Target: https keeps >= 85% of
 * plain req/s. plain -> nestHttps is the cost of TLS in Node; nestHttps -> https is the bootstrap's
 * own, which includes turning Express's ETag off (no-store answers are never revalidated).
 * plainSame is plain HTTP with the bootstrap's Express settings: https / plainSame is TLS plus the
 * gates alone, like for like.
 *
 * Where `taskset` exists the server process is pinned to CPU 0 and wrk to CPU 1. On a shared
 * machine req/s is noisy, so the server process's CPU time per request (utime + stime from
 * /proc/<pid>/stat over wrk's request count) is reported too: its ratio is what the throughput
 * ratio would be on an idle, CPU-bound machine.
 *
 * Also measured: createHttpsApp() to a listening socket in the server process, and a cold start
 * (fresh `node` process to listening, bench/https/cold-start.mjs) for HTTPS and for the same app
 * on plain HTTP. Target: listening within 1 s.
 *
 * Loopback only, bounded in time (about 4 x ROUNDS x SECONDS plus build and warm-up), everything
 * stopped at the end. Results go to stdout and bench/https/results.json; README.md has the figures.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestPki } from '@inference-shield/dev-pki';
import { bench, describe } from 'vitest';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const TASKSET = '/usr/bin/taskset';
const WRK = '/usr/bin/wrk';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VARIANTS = ['plain', 'plainSame', 'nestHttps', 'https'] as const;
type Variant = (typeof VARIANTS)[number];

/** About 1 KiB of JSON, like a small inference request. */
const PAYLOAD = JSON.stringify({
  model: 'demo',
  inputs: Array.from({ length: 48 }, (_, i) => Number((Math.sin(i) * 1000).toFixed(6))),
  parameters: { temperature: 0.2, top_p: 0.9, max_tokens: 64, user: 'bench-client-0001' },
  padding: 'x'.repeat(400),
});

interface Run {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server process CPU time (user + system) per request, in µs; -1 when /proc is not readable. */
  readonly cpuUsPerRequest: number;
}

interface ColdStart {
  readonly processStartToListeningMs: number;
  readonly importsMs: number;
  readonly createToListeningMs: number;
}

const pinned = existsSync(TASKSET);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process in µs, from /proc (Linux); undefined elsewhere. */
function cpuOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
  } catch {
    return undefined;
  }
}

/** wrk reports latency as "1.23ms", "850.00us" or "1.02s". */
function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

function wrk(url: string, script: string, serverPid: number): Promise<Run> {
  const before = cpuOf(serverPid);
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', '-s', script, url];
  const [command, argv] = pinned ? [TASKSET, ['-c', '1', WRK, ...args]] : [WRK, args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv);
    const killer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 30) * 1000);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(killer);
      const after = cpuOf(serverPid);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
      const total = /(\d+) requests in/.exec(out)?.[1];
      const p50 = /^\s+50%\s+([\d.]+)(us|ms|s)$/m.exec(out);
      const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)$/m.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
      const errors = /Socket errors: (.*)$/m.exec(out)?.[1];
      if (!rps || !total || !p50?.[1] || !p99?.[1])
        return reject(new Error(`wrk output not understood:\n${out}`));
      if (non2xx) return reject(new Error(`wrk saw ${non2xx} non-2xx answers on ${url}`));
      if (errors) return reject(new Error(`wrk saw socket errors on ${url}: ${errors}`));
      const cpu = before !== undefined && after !== undefined ? (after - before) / Number(total) : -1;
      resolve({
        rps: Number(rps),
        p50Ms: Number(toMs(p50[1], p50[2] ?? 'ms').toFixed(3)),
        p99Ms: Number(toMs(p99[1], p99[2] ?? 'ms').toFixed(3)),
        cpuUsPerRequest: Number(cpu.toFixed(1)),
      });
    });
  });
}

function summary(runs: Run[]): Run {
  return {
    rps: median(runs.map((r) => r.rps)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
  };
}

/** Compile the libs to dist/ as `npm run build` does (tsc emits even if another lib has type errors). */
function build(): void {
  const run = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  if (!existsSync(join(ROOT, 'libs/https/dist/esm/index.js')) || run.status !== 0) {
    throw new Error(`npm run build failed: ${run.stderr}`);
  }
}

/** Start bench-servers.mjs pinned to CPU 0; resolves with its pid, ports and start-up time. */
function startServers(
  cert: string,
  key: string,
): Promise<{
  child: ChildProcessWithoutNullStreams;
  pid: number;
  ports: Record<Variant, number>;
  startupToListeningMs: number;
}> {
  const script = fileURLToPath(new URL('./bench-servers.mjs', import.meta.url));
  const args = [script, cert, key];
  const child = pinned
    ? spawn(TASKSET, ['-c', '0', process.execPath, ...args], { cwd: ROOT })
    : spawn(process.execPath, args, { cwd: ROOT });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`bench servers did not start:\n${err}`)), 60_000);
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => reject(new Error(`bench servers exited (${code}):\n${err}`)));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined || !out.includes('\n')) return;
      clearTimeout(timer);
      const parsed = JSON.parse(line) as {
        pid: number;
        ports: Record<Variant, number>;
        startupToListeningMs: number;
      };
      resolve({ child, ...parsed });
    });
  });
}

function coldStarts(args: readonly string[], n = 3): ColdStart {
  const script = fileURLToPath(new URL('./cold-start.mjs', import.meta.url));
  const runs: ColdStart[] = [];
  for (let i = 0; i < n; i += 1) {
    const command = pinned ? TASKSET : process.execPath;
    const argv = pinned ? ['-c', '0', process.execPath, script, ...args] : [script, ...args];
    const r = spawnSync(command, argv, { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`cold-start.mjs failed: ${r.stderr}`);
    runs.push(JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as ColdStart);
  }
  return {
    processStartToListeningMs: median(runs.map((r) => r.processStartToListeningMs)),
    importsMs: median(runs.map((r) => r.importsMs)),
    createToListeningMs: median(runs.map((r) => r.createToListeningMs)),
  };
}

describe('HTTPS bootstrap overhead', () => {
  bench(
    'plain HTTP vs Nest httpsOptions vs createHttpsApp, keep-alive, 1 KiB JSON in and out (wrk)',
    async () => {
      build();
      const dir = mkdtempSync(join(tmpdir(), 'bench-https-'));
      const pki = await createTestPki(join(dir, 'pki'));
      const script = join(dir, 'post.lua');
      writeFileSync(
        script,
        `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${JSON.stringify(PAYLOAD)}\n`,
      );
      const servers = await startServers(pki.server.cert, pki.server.key);
      try {
        const url = (v: Variant): string =>
          `${v.startsWith('plain') ? 'http' : 'https'}://127.0.0.1:${servers.ports[v]}/v2/models/demo/infer`;
        for (const v of VARIANTS) await wrk(url(v), script, servers.pid); // warm-up (JIT, connections)
        const runs: Record<Variant, Run[]> = { plain: [], plainSame: [], nestHttps: [], https: [] };
        for (let i = 0; i < ROUNDS; i += 1) {
          for (const v of VARIANTS) runs[v].push(await wrk(url(v), script, servers.pid));
        }
        const m = {
          plain: summary(runs.plain),
          plainSame: summary(runs.plainSame),
          nestHttps: summary(runs.nestHttps),
          https: summary(runs.https),
        };
        const ratio = (a: number, b: number): number => Number((a / b).toFixed(3));
        const result = {
          date: new Date().toISOString(),
          node: process.version,
          cpu: cpus()[0]?.model ?? 'unknown',
          cpus: cpus().length,
          /** 1-minute load average when the rounds ended: other work on the machine skews req/s. */
          loadAverage: Number((loadavg()[0] ?? 0).toFixed(2)),
          pinned: pinned ? 'servers on CPU 0, wrk on CPU 1 (taskset)' : 'not pinned (no taskset)',
          payloadBytes: Buffer.byteLength(PAYLOAD),
          wrk: { threads: 1, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS },
          /** createHttpsApp() to listening, in the warm server process. */
          startupToListeningMs: servers.startupToListeningMs,
          /** Fresh `node` process to listening (median of 3). */
          coldStart: { https: coldStarts([pki.server.cert, pki.server.key]), plain: coldStarts(['--plain']) },
          runs,
          median: m,
          /** https / plain throughput: the 85% target. */
          ratio: ratio(m.https.rps, m.plain.rps),
          /** The same from server CPU per request: what the ratio would be on an idle, CPU-bound machine. */
          cpuRatio: ratio(m.plain.cpuUsPerRequest, m.https.cpuUsPerRequest),
          /**
           * https / plainSame: against plain HTTP with the Express settings the bootstrap applies
           * (ETag and X-Powered-By off), so only TLS and the bootstrap's gates differ.
           */
          likeForLike: {
            ratio: ratio(m.https.rps, m.plainSame.rps),
            cpuRatio: ratio(m.plainSame.cpuUsPerRequest, m.https.cpuUsPerRequest),
          },
          /** https / nestHttps: the bootstrap's own gates, TLS cost excluded (by req/s and by CPU). */
          bootstrapVsNestHttps: {
            ratio: ratio(m.https.rps, m.nestHttps.rps),
            cpuRatio: ratio(m.nestHttps.cpuUsPerRequest, m.https.cpuUsPerRequest),
          },
        };
        console.log(JSON.stringify(result, null, 2));
        writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
        if (result.ratio < 0.85 || result.cpuRatio < 0.85) {
          console.warn(
            `https/plain: ${result.ratio} by req/s, ${result.cpuRatio} by CPU per request (target 0.85)`,
          );
        }
      } finally {
        servers.child.stdin.end();
        await new Promise<void>((resolve) => {
          const kill = setTimeout(() => servers.child.kill('SIGKILL'), 15_000);
          servers.child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
        });
      }
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
