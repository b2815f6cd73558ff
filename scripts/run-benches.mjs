// Runs the benchmark harnesses of bench/ one after another (issue #18, targets 5 and 6).
//
//   npm run bench            # every harness, full length, current Node: each writes its results
//                            # (results.json / README.md) next to its README; bench/run-summary.json
//   npm run bench:smoke      # CI: each harness for about a second, nothing written, no timing
//                            # assertion; fails only if a harness crashes or finds a wrong answer
//   node scripts/run-benches.mjs --node 20,24,26 [--only a,b] [--smoke]
//                            # the matrix harnesses under each Node, side by side: a table in
//                            # bench/README.md (between the node-matrix markers) and
//                            # bench/node-matrix.json
//
// Options: --only <ids> (comma-separated, see HARNESSES), --smoke, --node <majors>, --list,
// --table (only rewrite the node-matrix table of bench/README.md from bench/node-matrix.json).
// Builds nothing: `npm run bench` and `npm run bench:smoke` run `npm run build` first.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NODE_BINS = {
  20: process.execPath,
  24: join(root, '.ci/node/24/package/bin/node'),
  26: join(root, '.ci/node/26/package/bin/node'),
};
/** A harness that has not finished by then is stuck (full: 4 min; smoke: 90 s). */
const TIMEOUT_MS = { full: 240_000, smoke: 90_000 };

/**
 * Each harness: how to run it, its knobs for a full run (sized so the whole set takes under ten
 * minutes) and for a smoke run (about a second of load), the files it writes itself in full mode,
 * and, for those that only print, the file where this runner keeps their figures. `matrix`: run
 * by --node by default.
 */
const HARNESSES = [
  {
    id: 'https',
    area: 'https',
    cmd: ['npx', 'vitest', 'bench', '--run', 'bench/https/https-bootstrap.bench.ts'],
    full: { BENCH_ROUNDS: '4', BENCH_SECONDS: '4' },
    smoke: { BENCH_ROUNDS: '1', BENCH_SECONDS: '1' },
    // Written even in a smoke run: put back afterwards.
    smokeWrites: ['bench/https/results.json'],
    writes: ['bench/https/results.json'],
  },
  {
    id: 'handshake-groups',
    area: 'https',
    cmd: ['node', 'bench/https/handshake-groups.mjs'],
    full: { BENCH_ROUNDS: '5', BENCH_HANDSHAKES: '300' },
    smoke: { BENCH_ROUNDS: '1', BENCH_HANDSHAKES: '20' },
    printsOnly: 'bench/https/handshake-groups.results.json',
    matrix: true,
  },
  {
    id: 'tokens',
    area: 'identity',
    cmd: ['node', 'bench/identity/token-verify.bench.mjs'],
    fullArgs: ['2000'],
    smokeArgs: ['100'],
    printsOnly: 'bench/identity/token-verify.results.json',
    matrix: true,
  },
  {
    id: 'cache-miss',
    area: 'identity',
    cmd: ['node', 'bench/identity/cache-miss.bench.mjs'],
    // 3 rounds of 2 s per load: the whole set stays under ten minutes with the build.
    full: { BENCH_ROUNDS: '3', BENCH_SECONDS: '2' },
    smoke: { BENCH_SMOKE: '1', BENCH_ROUNDS: '1', BENCH_SECONDS: '1' },
    writes: ['bench/identity/cache-miss.results.json'],
    matrix: true,
  },
  {
    id: 'guard',
    area: 'identity',
    cmd: ['node', 'bench/identity/guard-https.bench.mjs'],
    full: { BENCH_ROUNDS: '3', BENCH_SECONDS: '3' },
    smoke: { BENCH_ROUNDS: '1', BENCH_SECONDS: '1' },
    smokeWrites: ['bench/identity/guard-results.json'],
    writes: ['bench/identity/guard-results.json'],
  },
  {
    id: 'upstream',
    area: 'upstream',
    cmd: ['node', 'bench/upstream/upstream.bench.mjs'],
    full: {},
    smoke: { BENCH_ROUNDS: '1', BENCH_SECONDS: '1', BENCH_CHUNKS: '20', BENCH_OUT: '-' },
    writes: ['bench/upstream/README.md'],
  },
  {
    id: 'sample',
    area: 'sample',
    cmd: ['node', 'bench/sample/sample.bench.mjs'],
    full: {},
    smoke: { BENCH_ROUNDS: '1', BENCH_SECONDS: '1', BENCH_OUT: '-' },
    writes: ['bench/sample/results.json', 'bench/sample/README.md'],
  },
  {
    id: 'llm-relay',
    area: 'llm-relay',
    cmd: ['node', 'bench/llm-relay/relay.bench.mjs'],
    full: {},
    smoke: { BENCH_ROUNDS: '1', BENCH_SECONDS: '1', BENCH_OUT: '-' },
    writes: ['bench/llm-relay/results.json'],
  },
  {
    id: 'gateway',
    area: 'gateway',
    cmd: ['node', 'bench/gateway/gateway.bench.mjs'],
    full: {},
    smoke: { BENCH_ROUNDS: '1', BENCH_SECONDS: '1', BENCH_TOKEN_POOL: '10500', BENCH_OUT: '-' },
    writes: ['bench/gateway/results.json', 'bench/gateway/README.md'],
    matrix: true,
  },
];

function parseArgs(argv) {
  const opts = { smoke: false, only: undefined, nodes: undefined, list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--smoke') opts.smoke = true;
    else if (a === '--list') opts.list = true;
    else if (a === '--table') opts.table = true;
    else if (a === '--only') opts.only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--node') opts.nodes = (argv[++i] ?? '').split(',').filter(Boolean);
    else throw new TypeError(`unknown option ${a} (--smoke, --only <ids>, --node <majors>, --list, --table)`);
  }
  const ids = HARNESSES.map((h) => h.id);
  for (const id of opts.only ?? [])
    if (!ids.includes(id)) throw new TypeError(`--only: unknown harness "${id}" (${ids.join(', ')})`);
  for (const n of opts.nodes ?? []) {
    if (!(n in NODE_BINS))
      throw new TypeError(`--node: unknown version "${n}" (${Object.keys(NODE_BINS).join(', ')})`);
    if (!existsSync(NODE_BINS[n])) throw new TypeError(`--node ${n}: no binary at ${NODE_BINS[n]}`);
  }
  return opts;
}

/** Runs one harness under `nodeBin`; resolves with its exit code, duration and output. */
function runHarness(h, { smoke, nodeBin, quiet }) {
  const env = {
    ...process.env,
    ...(smoke ? h.smoke : h.full),
    // `node` and `npx` in the harness's own children resolve to the chosen binary.
    PATH: `${dirname(nodeBin)}:${process.env.PATH ?? ''}`,
  };
  const [cmd, ...rest] = h.cmd;
  const args = [...rest, ...((smoke ? h.smokeArgs : h.fullArgs) ?? [])];
  const bin = cmd === 'node' ? nodeBin : cmd;
  const started = Date.now();
  return new Promise((ok) => {
    const child = spawn(bin, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
      if (!quiet) process.stdout.write(c);
    });
    child.stderr.on('data', (c) => {
      stderr += c;
      if (!quiet) process.stderr.write(c);
    });
    const limit = smoke ? TIMEOUT_MS.smoke : TIMEOUT_MS.full;
    const timer = setTimeout(() => child.kill('SIGKILL'), limit);
    child.on('error', (err) => {
      clearTimeout(timer);
      ok({ code: -1, seconds: (Date.now() - started) / 1000, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      ok({
        code: code ?? (signal ? `${signal}${signal === 'SIGKILL' ? ` (over ${limit / 1000} s)` : ''}` : -1),
        seconds: (Date.now() - started) / 1000,
        stdout,
        stderr,
      });
    });
  });
}

/** The last stdout line that is a JSON object, if any (handshake-groups prints its result so). */
function lastJson(stdout) {
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    const t = l.trim();
    if (t.startsWith('{') && t.endsWith('}')) {
      try {
        return JSON.parse(t);
      } catch {
        /* not JSON after all */
      }
    }
  }
  return undefined;
}

/** The Markdown tables of a harness's output as rows of { header: cell }. */
function parseTables(stdout) {
  const tables = [];
  let current;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells.every((c) => /^:?-+:?$/.test(c))) {
      // A separator right after rows: the last row was the header of a new table.
      const last = current?.rows.pop();
      if (last) {
        current = { header: last, rows: [] };
        tables.push(current);
      }
      continue;
    }
    if (!current) {
      current = { header: cells, rows: [] };
      tables.push(current);
    } else current.rows.push(cells);
  }
  return tables.map((t) => t.rows.map((r) => Object.fromEntries(t.header.map((h, i) => [h, r[i] ?? '']))));
}

const tableLines = (stdout) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .join('\n');

async function nodeVersion(bin) {
  const r = await new Promise((ok) => {
    const c = spawn(bin, ['-p', 'process.version + " " + process.versions.openssl'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', () => ok(out.trim()));
  });
  const [node, openssl] = r.split(' ');
  return { node, openssl };
}

/** The figures of one harness's run worth putting side by side across Node versions. */
function keyFigures(id, stdout) {
  if (id === 'tokens') {
    // | alg | raw crypto.verify | jose.jwtVerify | TokenVerifier miss | TokenVerifier hit |
    return stdout
      .split('\n')
      .filter((l) => /^\| (RS256|ES256|EdDSA|PS256)/.test(l))
      .map((l) => {
        const [alg, raw, jose, miss, hit] = l
          .split('|')
          .slice(1, 6)
          .map((c) => c.trim());
        return `${alg}: raw ${raw}, jose ${jose}, ours miss ${miss} / hit ${hit}`;
      })
      .join('; ');
  }
  if (id === 'cache-miss') {
    // | alg | hit | miss | miss − hit | raw (new token) in place | miss − (hit + raw) (range) | ≤ 20? |
    // raw (hot sample) in place | miss − (hit + hot raw) | raw in a loop |
    return stdout
      .split('\n')
      .filter((l) => /^\| (RS256|ES256|EdDSA) /.test(l))
      .map((l) => {
        const [alg, , , missHit, rawInPlace, over, , rawHot, overHot, rawLoop] = l
          .split('|')
          .slice(1, 11)
          .map((c) => c.trim());
        const hot = rawHot === '—' ? '' : `hot sample ${rawHot}, `;
        const overHotText = overHot === '—' ? '' : ` (against the hot sample ${overHot})`;
        return `${alg}: miss − hit ${missHit} µs, raw in place ${rawInPlace} (${hot}loop ${rawLoop}), ours ${over}${overHotText}`;
      })
      .join('; ');
  }
  if (id === 'handshake-groups') {
    const j = lastJson(stdout);
    if (!j?.groups) return '';
    const x = j.groups.X25519;
    const both = (g) => g.clientCpuUs + g.serverCpuUs;
    return Object.entries(j.groups)
      .map(([g, v]) => `${g} ${Math.round(both(v))} µs${x ? ` (${(both(v) / both(x)).toFixed(2)})` : ''}`)
      .join('; ');
  }
  if (id === 'gateway') {
    return stdout
      .split('\n')
      .filter((l) => l.startsWith('- ') && l.includes('in-process vs'))
      .map((l) =>
        l
          .replace(/^- /, '')
          .replace(/\*\*/g, '')
          .replace(/ by CPU per request/, '')
          .replace(/ token, in-process vs gw-(http|mtls):/, (_, t) => ` → ${t === 'http' ? 'HTTP' : 'mTLS'}`)
          .replace(/× \(rounds /, ' ('),
      )
      .join('; ');
  }
  return tableLines(stdout).split('\n').slice(-1)[0] ?? '';
}

async function formatted(file, text) {
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...config, filepath: file });
  } catch {
    return text;
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.list) {
    for (const h of HARNESSES) console.log(`${h.id}${h.matrix ? ' (matrix)' : ''}: ${h.cmd.join(' ')}`);
    return;
  }
  if (opts.table) {
    const matrix = JSON.parse(readFileSync(join(root, 'bench/node-matrix.json'), 'utf8'));
    await writeMatrixTable(matrix.results.map((r) => ({ date: matrix.date, ...r })));
    return;
  }
  if (!existsSync(join(root, 'dist/sample-model/src/app/app.module.js'))) {
    throw new Error('no compiled tree in dist/: run `npm run build` first');
  }
  const started = Date.now();

  if (opts.nodes) {
    // Side by side: the matrix harnesses (or --only) under each Node, nothing written by them.
    const chosen = HARNESSES.filter((h) => (opts.only ? opts.only.includes(h.id) : h.matrix));
    const versions = {};
    for (const n of opts.nodes) versions[n] = await nodeVersion(NODE_BINS[n]);
    const results = [];
    let failed = 0;
    for (const h of chosen) {
      for (const n of opts.nodes) {
        console.error(`── ${h.id} on Node ${versions[n].node} (OpenSSL ${versions[n].openssl})`);
        const hh = { ...h, full: { ...h.full, BENCH_OUT: '-' } };
        const r = await runHarness(hh, { smoke: opts.smoke, nodeBin: NODE_BINS[n], quiet: true });
        if (r.code !== 0) {
          failed++;
          console.error(`   failed (${r.code}):\n${r.stderr.slice(-2000)}`);
        }
        results.push({
          harness: h.id,
          node: versions[n].node,
          openssl: versions[n].openssl,
          code: r.code,
          seconds: r.seconds,
          figures: r.code === 0 ? keyFigures(h.id, r.stdout) : `failed (${r.code})`,
          json: lastJson(r.stdout),
          tables: parseTables(r.stdout),
        });
        console.error(`   ${r.seconds.toFixed(0)} s: ${results.at(-1).figures}`);
      }
    }
    if (!opts.smoke) {
      const date = new Date().toISOString();
      const file = join(root, 'bench/node-matrix.json');
      // With --only, the other harnesses' rows of the previous matrix are kept, with their date.
      const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { results: [] };
      const ran = new Set(chosen.map((h) => h.id));
      const order = (r) => HARNESSES.findIndex((h) => h.id === r.harness);
      const merged = [
        ...(opts.only ? previous.results.filter((r) => !ran.has(r.harness)) : []).map((r) => ({
          date: previous.date,
          ...r,
        })),
        ...results.map((r) => ({ date, ...r })),
      ].sort((x, y) => order(x) - order(y));
      writeFileSync(
        file,
        await formatted(file, `${JSON.stringify({ date, smoke: false, results: merged }, null, 2)}\n`),
      );
      await writeMatrixTable(merged);
      console.error(`wrote bench/node-matrix.json and the node-matrix table of bench/README.md`);
    }
    console.error(`done in ${((Date.now() - started) / 1000).toFixed(0)} s, ${failed} failed`);
    process.exitCode = failed > 0 ? 1 : 0;
    return;
  }

  const chosen = opts.only ? HARNESSES.filter((h) => opts.only.includes(h.id)) : HARNESSES;
  const { node, openssl } = await nodeVersion(process.execPath);
  const summary = [];
  let failed = 0;
  for (const h of chosen) {
    console.error(`── ${h.id}${opts.smoke ? ' (smoke)' : ''}: ${h.cmd.join(' ')}`);
    // A smoke run must leave the committed figures alone, even of harnesses that always write.
    const kept = opts.smoke
      ? (h.smokeWrites ?? []).map((f) => [
          f,
          existsSync(join(root, f)) ? readFileSync(join(root, f)) : undefined,
        ])
      : [];
    const r = await runHarness(h, { smoke: opts.smoke, nodeBin: process.execPath, quiet: false });
    for (const [f, content] of kept) if (content !== undefined) writeFileSync(join(root, f), content);
    if (r.code !== 0) failed++;
    if (!opts.smoke && r.code === 0 && h.printsOnly) {
      const file = join(root, h.printsOnly);
      const out = {
        date: new Date().toISOString(),
        node,
        openssl,
        command: h.cmd.join(' '),
        json: lastJson(r.stdout),
        tables: parseTables(r.stdout),
      };
      writeFileSync(file, await formatted(file, `${JSON.stringify(out, null, 2)}\n`));
    }
    summary.push({
      harness: h.id,
      code: r.code,
      seconds: Number(r.seconds.toFixed(1)),
      results: opts.smoke ? [] : [...(h.writes ?? []), ...(h.printsOnly ? [h.printsOnly] : [])],
    });
    console.error(`── ${h.id}: ${r.code === 0 ? 'ok' : `FAILED (${r.code})`} in ${r.seconds.toFixed(0)} s`);
  }
  const total = (Date.now() - started) / 1000;
  console.error(
    `\n${summary.map((s) => `${s.harness.padEnd(18)} ${s.code === 0 ? 'ok    ' : 'FAILED'} ${s.seconds} s`).join('\n')}`,
  );
  console.error(`total ${total.toFixed(0)} s on Node ${node}, ${failed} failed`);
  if (!opts.smoke && !opts.only) {
    const file = join(root, 'bench/run-summary.json');
    writeFileSync(
      file,
      await formatted(
        file,
        `${JSON.stringify({ date: new Date().toISOString(), node, openssl, seconds: Math.round(total), harnesses: summary }, null, 2)}\n`,
      ),
    );
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

const START = '<!-- node-matrix:start (generated by scripts/run-benches.mjs --node) -->';
const END = '<!-- node-matrix:end -->';

/** The side-by-side table between the markers of bench/README.md (added once if absent). */
async function writeMatrixTable(results) {
  const file = join(root, 'bench/README.md');
  const text = readFileSync(file, 'utf8');
  const when = (r) => `${r.date.slice(0, 16).replace('T', ' ')}`;
  const rows = results.map(
    (r) => `| ${r.harness} | ${r.node} | ${r.openssl} | ${when(r)} | ${r.figures.replace(/\|/g, '\\|')} |`,
  );
  const block = `${START}

\`node scripts/run-benches.mjs --node ${[...new Set(results.map((r) => r.node.split('.')[0].slice(1)))].join(',')}\`
(figures of each harness on each Node, run at the time given, UTC; the full output is in
[\`node-matrix.json\`](node-matrix.json)).
gateway: CPU per request of the gateway over that of the sample in-process (≥ 1: in-process cheaper), median
(range of the rounds); handshake-groups: client + server CPU per full TLS 1.3 handshake (ratio to X25519);
tokens: µs per verification (bench/identity/token-verify.bench.mjs); cache-miss: server CPU µs per request
that a new token adds in place, the raw \`crypto.verify\` of a new token in place and in a loop, and ours:
miss − (hit + raw in place), median (range). One run each, on a shared machine.

| harness | Node | OpenSSL | run | figures |
| --- | --- | --- | --- | --- |
${rows.join('\n')}

${END}`;
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  const next =
    a >= 0 && b > a
      ? `${text.slice(0, a)}${block}${text.slice(b + END.length)}`
      : text.replace('## Running them', `## Node 20, 24 and 26 side by side\n\n${block}\n\n## Running them`);
  writeFileSync(file, await formatted(file, next));
}

await main();
