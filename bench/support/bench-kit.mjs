// Small pieces shared by the harnesses that fork their servers, load them with wrk and measure CPU
// per request (bench/gateway; the same steps bench/sample/sample.bench.mjs takes inline): knobs from
// the environment, core choice, IPC with the children, wrk runs, medians, Markdown tables and the
// repository's Prettier style for the files a harness writes.
import { execFileSync, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** A child that has not answered over IPC by then is stuck: the run fails instead of hanging. */
export const IPC_TIMEOUT_MS = 60_000;

/** An integer knob from the environment (1 to `max`), or `fallback`; a bad value throws naming it. */
export function positiveInt(name, fallback, max = 3600) {
  const raw = process.env[name];
  const v = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new TypeError(`${name} must be an integer from 1 to ${max}`);
  return v;
}

/** A CPU index knob from the environment, or `fallback`. */
export function cpuIndex(name, fallback) {
  const raw = process.env[name];
  const v = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < 0 || v >= cpus().length) {
    throw new TypeError(`${name} must be a CPU index from 0 to ${cpus().length - 1}`);
  }
  return v;
}

/** Busy time of each core over one second, from /proc/stat (Linux); undefined elsewhere. */
export async function coreBusy() {
  const read = () =>
    readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((l) => /^cpu\d+ /.test(l))
      .map((l) => {
        const t = l.trim().split(/\s+/).slice(1).map(Number);
        const idle = (t[3] ?? 0) + (t[4] ?? 0);
        return { idle, total: t.reduce((a, b) => a + b, 0) };
      });
  try {
    const a = read();
    await new Promise((ok) => setTimeout(ok, 1000));
    const b = read();
    return b.map((x, i) => 1 - (x.idle - a[i].idle) / Math.max(1, x.total - a[i].total));
  } catch {
    return undefined;
  }
}

/** CPU indexes from the idlest over the last second to the busiest. */
export async function coresByIdle() {
  const busy = await coreBusy();
  const order = busy
    ? busy
        .map((b, i) => [b, i])
        .sort((x, y) => x[0] - y[0])
        .map(([, i]) => i)
    : cpus().map((_, i) => i);
  return { busy, order };
}

/** User + system CPU time of a process, in µs, from /proc/<pid>/stat (all its threads). */
export function procCpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14, 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / CLOCK_TICKS;
}
/** USER_HZ: 100 on every Linux this runs on; `getconf CLK_TCK` when available. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Pins a process and all its threads to one core. */
export function pin(pid, cpu) {
  if (cpu !== undefined)
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Ask a child something over IPC; a child that does not answer in time fails the run. */
export function ask(child, message, key) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      fail(new Error(`no "${key}" answer from a child within ${IPC_TIMEOUT_MS} ms`));
    }, IPC_TIMEOUT_MS);
    const onMessage = (m) => {
      if (m && typeof m === 'object' && key in m) {
        clearTimeout(timer);
        child.off('message', onMessage);
        ok(m[key]);
      }
    };
    child.on('message', onMessage);
    if (message !== undefined) child.send(message);
  });
}

/**
 * Forks `script --serve kind`, pins it, sends it `setup` and waits for its `ready` message. With
 * `profileDir`, the child writes a V8 CPU profile `<kind>.cpuprofile` there when it stops.
 */
export async function startChild({ script, kind, setup, cpu, logFd, children, profileDir }) {
  const child = fork(script, ['--serve', kind], {
    stdio: ['ignore', logFd, 'inherit', 'ipc'],
    ...(profileDir
      ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${kind}.cpuprofile`] }
      : {}),
  });
  children.push(child);
  pin(child.pid, cpu);
  const exited = new Promise((_, fail) =>
    child.once('exit', (code) => fail(new Error(`${kind} exited (${code}) before it was ready`))),
  );
  const ready = ask(child, setup, 'ready');
  return { child, ...(await Promise.race([ready, exited])) };
}

/** In a child: answers the parent's `cpu`, `close` (and any other) messages; exits with the parent. */
export function onParentMessages(handlers) {
  process.on('message', (msg) => {
    const handler = handlers[msg];
    if (handler) void handler();
  });
  process.on('disconnect', () => process.exit(0));
}

/** Asks a forked child to close, and kills it if it has not exited 15 s later. */
export async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  if (child.connected) child.send('close');
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/**
 * One wrk run (one thread, keep-alive) with a Lua `script` that prints a `WRK_RESULT {json}` line
 * (bench/sample/post-json.lua does); bounded: killed if it outlives its duration by 15 s.
 */
export function runWrk({ url, script, scriptArgs = [], seconds, connections, cpu }) {
  return new Promise((ok, fail) => {
    const args = [
      '-t1',
      `-c${connections}`,
      `-d${seconds}s`,
      '--timeout',
      '5s',
      '-s',
      script,
      url,
      '--',
      ...scriptArgs,
    ];
    const child =
      cpu === undefined ? spawn('wrk', args) : spawn('taskset', ['-c', String(cpu), 'wrk', ...args]);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.on('error', fail);
    child.on('close', () => {
      clearTimeout(timer);
      const m = /WRK_RESULT (\{.*\})/.exec(out);
      if (!m) return fail(new Error(`wrk output not understood:\n${out}`));
      ok(JSON.parse(m[1]));
    });
  });
}

/** The median (upper median for an even count). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** µs of a `process.cpuUsage()` value. */
export const cpuMicros = (u) => u.user + u.system;

/** The repository's Prettier style, so the written files pass `npm run lint` as they are. */
export async function formatted(file, text) {
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...config, filepath: file });
  } catch {
    return text;
  }
}

/** A Markdown table: first column left-aligned, the others right-aligned. */
export function table(header, body) {
  const all = [header, ...body];
  const width = header.map((_, i) => Math.max(...all.map((row) => String(row[i]).length)));
  const line = (row) =>
    `| ${row.map((c, i) => (i === 0 ? String(c).padEnd(width[i]) : String(c).padStart(width[i]))).join(' | ')} |`;
  const sep = `| ${width.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(header), sep, ...body.map(line)].join('\n');
}
