// Handshake CPU cost per key-exchange group (issue #15 §4): X25519MLKEM768 vs X25519 vs P-256,
// side by side in one run.
//
//   PATH=.ci/node/26/package/bin:$PATH node bench/https/handshake-groups.mjs
//   knobs: BENCH_ROUNDS (5), BENCH_HANDSHAKES (400 per group and round)
//
// A TLS server with the policy's groups (`PQ_ECDH_CURVES` where OpenSSL offers the hybrid, else
// `ECDH_CURVES`; the same strings as libs/core/src/tls-suites.ts), the TLS 1.3 suites and an
// ECDSA P-256 certificate runs in its own process pinned to CPU 0 with `taskset`; this process, the
// client, pins itself to CPU 1. For each group, the client offers that group alone and makes full
// handshakes one after another (no session resumption), checking on each that the group it names
// (`getEphemeralKeyInfo()`) is the one offered. Rounds alternate the groups (rotating the order),
// and medians are compared. CPU time is each process's `process.cpuUsage()` (user + system)
// around a batch: a handshake's CPU on each side, whatever else the machine runs. Bytes are the
// client socket's `bytesWritten` / `bytesRead` per handshake (the hybrid's key shares are 1216 and
// 1120 bytes against X25519's 32). A benchmark, not a test: it asserts only that the group
// negotiated is the one offered.
//
// The certificate comes from `openssl req` (any OpenSSL; the ECDSA signature is the same on every
// group, so it cancels out of the differences).
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';

const PQ_ECDH_CURVES = '*X25519MLKEM768/*X25519:P-256:P-384';
const ECDH_CURVES = 'X25519:P-256:P-384';
const TLS13_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
/** What a client offering only this group reports it negotiated. */
const GROUPS = [
  { label: 'X25519MLKEM768', group: 'X25519MLKEM768', reported: 'X25519MLKEM768', pq: true },
  { label: 'X25519', group: 'X25519', reported: 'X25519' },
  { label: 'P-256', group: 'P-256', reported: 'prime256v1' },
  // Our upstream client's list: the hybrid is negotiated, but the client also sends (and so
  // generates) an X25519 key share, kept for classical-only servers.
  {
    label: 'our client list (hybrid + X25519 shares)',
    group: PQ_ECDH_CURVES,
    reported: 'X25519MLKEM768',
    pq: true,
  },
];

function pqAvailable() {
  // Never ask an OpenSSL older than 3.5: a refused group list leaves an error on OpenSSL's queue
  // that trips the process's next key parse (see libs/core/src/tls-suites.ts).
  const [major, minor] = process.versions.openssl.split('.').map(Number);
  if (!(major > 3 || (major === 3 && minor >= 5))) return false;
  try {
    tls.createSecureContext({ ecdhCurve: PQ_ECDH_CURVES });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- server process
if (process.argv[2] === '--server') {
  const [, , , cert, key, ecdhCurve] = process.argv;
  const server = tls.createServer(
    {
      cert: readFileSync(cert),
      key: readFileSync(key),
      ecdhCurve,
      minVersion: 'TLSv1.2',
      ciphers: TLS13_CIPHERS,
    },
    (socket) => {
      socket.on('error', () => undefined);
      socket.end();
    },
  );
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send({ cpu: u.user + u.system });
    } else if (m === 'stop') server.close(() => process.exit(0));
  });
} else {
  await main();
}

// ---------------------------------------------------------------- client (this process)
function handshakeOnce(port, secureContext, group, reported) {
  return new Promise((resolve, reject) => {
    // Our own TCP socket, to count the bytes on the wire (TLS records included).
    const tcp = net.connect(port, '127.0.0.1');
    const socket = tls.connect({ socket: tcp, servername: 'localhost', secureContext });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const info = socket.getEphemeralKeyInfo();
      if (info.name !== reported) {
        socket.destroy();
        reject(new Error(`offered ${group} alone, negotiated ${info.name}`));
        return;
      }
      socket.end();
    });
    tcp.once('close', () => resolve({ out: tcp.bytesWritten, in: tcp.bytesRead }));
  });
}

/**
 * The key-exchange primitives alone, through node:crypto, µs per operation: what each side of a
 * handshake computes for the group (the hybrid is X25519 plus ML-KEM-768).
 */
function primitives(n) {
  const time = (fn) => {
    for (let i = 0; i < 100; i++) fn();
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const c = process.cpuUsage(c0);
    return Number(((c.user + c.system) / n).toFixed(1));
  };
  const peer = crypto.generateKeyPairSync('x25519');
  const peer256 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const out = {
    'X25519 keygen + shared secret': time(() => {
      const k = crypto.generateKeyPairSync('x25519');
      crypto.diffieHellman({ privateKey: k.privateKey, publicKey: peer.publicKey });
    }),
    'P-256 keygen + shared secret': time(() => {
      const k = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      crypto.diffieHellman({ privateKey: k.privateKey, publicKey: peer256.publicKey });
    }),
  };
  if (typeof crypto.encapsulate === 'function') {
    const kem = crypto.generateKeyPairSync('ml-kem-768');
    const { ciphertext } = crypto.encapsulate(kem.publicKey);
    out['ML-KEM-768 keygen (client)'] = time(() => crypto.generateKeyPairSync('ml-kem-768'));
    out['ML-KEM-768 encapsulate (server)'] = time(() => crypto.encapsulate(kem.publicKey));
    out['ML-KEM-768 decapsulate (client)'] = time(() => crypto.decapsulate(kem.privateKey, ciphertext));
  }
  return out;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main() {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
  const handshakes = Number(process.env.BENCH_HANDSHAKES ?? 400);
  const pq = pqAvailable();
  const groups = pq ? GROUPS : GROUPS.filter((g) => g.pq !== true);
  const dir = mkdtempSync(join(tmpdir(), 'handshake-groups-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-days',
      '1',
    ],
    { stdio: 'ignore' },
  );
  const ca = readFileSync(cert);
  // One client context per group, built once: what a pooled client does (building one per
  // connection, with its CA, costs more than the handshake itself).
  const contexts = new Map(
    groups.map((g) => [g.label, tls.createSecureContext({ ca, ecdhCurve: g.group, minVersion: 'TLSv1.3' })]),
  );

  let pinned = false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
    pinned = true;
  } catch {
    // No taskset: run unpinned and say so.
  }
  const serverArgs = [process.argv[1], '--server', cert, key, pq ? PQ_ECDH_CURVES : ECDH_CURVES];
  const child = pinned
    ? spawn('taskset', ['-c', '0', process.execPath, ...serverArgs], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
    : spawn(process.execPath, serverArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies = [];
  let waiting;
  child.on('message', (m) => {
    replies.push(m);
    waiting?.();
  });
  const next = async () => {
    while (replies.length === 0) await new Promise((r) => (waiting = r));
    return replies.shift();
  };
  const { port } = await next();
  const serverCpu = async () => {
    child.send('cpu');
    return (await next()).cpu;
  };

  const samples = Object.fromEntries(
    groups.map((g) => [g.label, { client: [], server: [], wall: [], out: 0, in: 0 }]),
  );
  // Warm-up: JIT, OpenSSL's lazy initialisation, the first ML-KEM use.
  for (const g of groups)
    for (let i = 0; i < 50; i++) await handshakeOnce(port, contexts.get(g.label), g.group, g.reported);

  for (let r = 0; r < rounds; r++) {
    const order = groups.map((_, i) => groups[(i + r) % groups.length]);
    for (const g of order) {
      const s = samples[g.label];
      const s0 = await serverCpu();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      let bytes;
      for (let i = 0; i < handshakes; i++)
        bytes = await handshakeOnce(port, contexts.get(g.label), g.group, g.reported);
      const wall = performance.now() - t0;
      const c1 = process.cpuUsage(c0);
      const s1 = await serverCpu();
      s.client.push((c1.user + c1.system) / handshakes);
      s.server.push((s1 - s0) / handshakes);
      s.wall.push((wall * 1000) / handshakes);
      s.out = bytes.out;
      s.in = bytes.in;
    }
  }
  const kex = primitives(2000);
  child.send('stop');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    openssl: process.versions.openssl,
    pinned,
    serverGroups: pq ? PQ_ECDH_CURVES : ECDH_CURVES,
    rounds,
    handshakesPerRound: handshakes,
    primitivesUs: kex,
    loadAverage: (await import('node:os')).loadavg().map((n) => Number(n.toFixed(2))),
    groups: Object.fromEntries(
      groups.map((g) => {
        const s = samples[g.label];
        return [
          g.label,
          {
            clientCpuUs: Number(median(s.client).toFixed(1)),
            serverCpuUs: Number(median(s.server).toFixed(1)),
            wallUs: Number(median(s.wall).toFixed(1)),
            clientBytesOut: s.out,
            clientBytesIn: s.in,
          },
        ];
      }),
    ),
  };
  const base = result.groups.X25519;
  console.log(
    `Node ${result.node}, OpenSSL ${result.openssl}, server groups ${result.serverGroups}${pinned ? '' : ' (NOT pinned)'}`,
  );
  console.log(
    `${rounds} rounds × ${handshakes} full TLS 1.3 handshakes per group, medians; ratios against X25519`,
  );
  console.log('| group | client CPU µs | server CPU µs | both µs | vs X25519 | wall µs | bytes out / in |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, g] of Object.entries(result.groups)) {
    const both = g.clientCpuUs + g.serverCpuUs;
    const ratio = both / (base.clientCpuUs + base.serverCpuUs);
    console.log(
      `| ${name} | ${g.clientCpuUs} | ${g.serverCpuUs} | ${both.toFixed(1)} | ${ratio.toFixed(2)} | ${g.wallUs} | ${g.clientBytesOut} / ${g.clientBytesIn} |`,
    );
  }
  console.log('\nKey-exchange primitives alone (node:crypto, µs per operation, client process):');
  for (const [name, us] of Object.entries(kex)) console.log(`- ${name}: ${us}`);
  if (!pq)
    console.log(
      `X25519MLKEM768: not offered by OpenSSL ${result.openssl} (Node 24/26 with OpenSSL 3.5 have it)`,
    );
  console.log(JSON.stringify(result));
}
