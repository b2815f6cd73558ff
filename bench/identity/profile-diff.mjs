// Per-request self time of each function in two V8 CPU profiles, and the difference: what app B
// spends per request that app A does not, function by function.
//
//   BENCH_PROFILE=1 BENCH_MODE=sequential BENCH_APPS=guarded-nolog node bench/identity/guard-https.bench.mjs
//   node bench/identity/profile-diff.mjs /tmp/shield-guard-prof/unguarded.cpuprofile <requests A> \
//        /tmp/shield-guard-prof/guarded-nolog.cpuprofile <requests B> [rows]
//
// <requests>: how many requests the app served while profiled (the runs in guard-results.json plus
// the 4 s warm-up). Idle samples are left out. Sampling is coarse (1 ms by default): read
// differences below a few tenths of a µs as noise.
import { readFileSync } from 'node:fs';

const [, , fileA, requestsA, fileB, requestsB, rows = '40'] = process.argv;
if (!fileA || !fileB || !(Number(requestsA) > 0) || !(Number(requestsB) > 0)) {
  console.error('usage: profile-diff.mjs <profile A> <requests A> <profile B> <requests B> [rows]');
  process.exit(2);
}

/** Function → self µs per request. */
function selfPerRequest(file, requests) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const interval = (profile.endTime - profile.startTime) / profile.samples.length;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = new Map();
  for (const id of profile.samples) {
    const frame = byId.get(id).callFrame;
    if (frame.functionName === '(idle)') continue;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber}`;
    out.set(key, (out.get(key) ?? 0) + interval / requests);
  }
  return out;
}

const a = selfPerRequest(fileA, Number(requestsA));
const b = selfPerRequest(fileB, Number(requestsB));
const total = (m) => [...m.values()].reduce((x, y) => x + y, 0);
console.log(`µs per request: A ${total(a).toFixed(1)}, B ${total(b).toFixed(1)}`);
console.log('   B-A       A       B  function');
const table = [...new Set([...a.keys(), ...b.keys()])]
  .map((key) => ({ key, a: a.get(key) ?? 0, b: b.get(key) ?? 0 }))
  .sort((x, y) => y.b - y.a - (x.b - x.a));
for (const r of table.slice(0, Number(rows))) {
  console.log(
    `${(r.b - r.a).toFixed(2).padStart(7)} ${r.a.toFixed(2).padStart(7)} ${r.b.toFixed(2).padStart(7)}  ${r.key}`,
  );
}
