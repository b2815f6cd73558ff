/**
 * Scale-out, shown (issue #17 §4): three replicas of the sample, each a real process from `dist`,
 * behind HAProxy in TCP mode (TLS passes through, so the client certificate reaches the replica),
 * sharing one real `redis-server`, one dev IdP and one stand-in LLM (both child processes, as
 * `npm start` runs them). Shown here: a DPoP proof accepted by one replica is refused by another; a
 * budget of N requests is N across the three; a certificate rotation and a rolling restart under a
 * request loop lose no request (the client retries only requests whose connection a stopping
 * replica closed, and counts them); a replica killed with SIGKILL leaves the others serving.
 *
 * The figures (requests sent, retried, failed, per replica) are printed as one `scale-out:` line
 * per phase, for the CI log and the docs.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevCertificateAuthority, initDevPki, type DevPkiInitResult } from '@inference-shield/dev-pki';
import { loadDevIdpClientsFile } from '../../apps/dev-idp/src/index.js';
import { CLIENTS_FILE } from '../identity/support/dev-idp.js';
import { DpopClient, PUBLIC_ORIGIN, routedFetch } from '../identity/support/dpop-client.js';
import { call, type CallResult } from '../support/harness.js';
import { startRedis, type RunningRedis } from '../support/redis-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE_MAIN = join(ROOT, 'dist/sample-model/src/main.js');
const HAPROXY = process.env['HAPROXY'] ?? '/usr/sbin/haproxy';
/** Requests per minute of one caller on `/v1`, across all replicas. */
const BUDGET = 6;
const REPLICAS = ['r1', 'r2', 'r3'] as const;
type ReplicaName = (typeof REPLICAS)[number];
const INFER = '/v2/models/fraud-lr/infer';
const INFER_BODY = {
  inputs: [{ name: 'features', shape: [1, 8], datatype: 'FP32', data: [180, 21, 90, 0.4, 40, 4, 0, 0] }],
};

interface Replica {
  readonly name: ReplicaName;
  readonly port: number;
  child: ChildProcess;
  output: string;
}

let dir: string;
let pki: DevPkiInitResult;
let ca: string;
let redis: RunningRedis;
let haproxy: ChildProcess;
let haproxyOutput = '';
const helpers: ChildProcess[] = [];
const replicas = new Map<ReplicaName, Replica>();
const ports = { idp: 0, llm: 0, lb: 0 };
let statsSocket: string;
let demo: { certPem: string; keyPem: string };
let intruder: { certPem: string; keyPem: string };

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => ok(port));
    });
  });
}

/** The file a workspace package's bin runs (from its manifest, as npm links it). */
function binOf(app: string, bin: string): string {
  const manifest = join(ROOT, 'apps', app, 'package.json');
  const { bin: bins } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: Record<string, string> };
  const file = bins?.[bin];
  if (file === undefined) throw new Error(`${app} has no bin ${bin}`);
  return resolve(ROOT, 'apps', app, file);
}

/** Polls `check` until it is true (every 100 ms), or throws after `ms` naming `what`. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      // A process that died will not come up: say so now rather than at the deadline.
      if (err instanceof Error && / exited/.test(err.message)) throw err;
    }
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms / 1000} s`);
}

async function answers(port: number, path: string, client?: { certPem: string; keyPem: string }) {
  const r = await call(port, { ca, path, timeoutMs: 5000, ...(client ? { client } : {}) });
  return r.status === 200;
}

function spawnService(script: string, env: Record<string, string>, label: string): ChildProcess {
  const child = spawn(process.execPath, [script], {
    cwd: ROOT,
    env: { ...process.env, NODE_EXTRA_CA_CERTS: '', SHIELD_PKI_DIR: pki.dir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  child.once('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null) console.error(`${label} exited ${code}:\n${out}`);
  });
  return child;
}

/** Starts replica `name` on its port and waits until it answers ready over TLS. */
async function startReplica(name: ReplicaName, port: number): Promise<Replica> {
  const replica: Replica = { name, port, output: '', child: undefined as unknown as ChildProcess };
  replica.child = spawn(process.execPath, [SAMPLE_MAIN], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_EXTRA_CA_CERTS: '',
      SHIELD_PKI_DIR: pki.dir,
      SHIELD_MODEL_PORT: String(port),
      SHIELD_OIDC_ISSUER: `https://localhost:${ports.idp}`,
      SHIELD_OIDC_AUDIENCE: PUBLIC_ORIGIN,
      SHIELD_LLM_URL: `https://localhost:${ports.llm}/v1`,
      SHIELD_REDIS_URL: redis.url,
      SHIELD_DPOP_ORIGIN: PUBLIC_ORIGIN,
      SHIELD_LLM_REQUESTS_PER_MINUTE: String(BUDGET),
      // Readiness 503 for this long after SIGTERM, while the replica still serves.
      SHIELD_DRAIN_DELAY_MS: '600',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  replica.child.stdout?.on('data', (d: Buffer) => (replica.output += d.toString()));
  replica.child.stderr?.on('data', (d: Buffer) => (replica.output += d.toString()));
  replicas.set(name, replica);
  await until(`replica ${name} ready`, () => {
    if (replica.child.exitCode !== null) throw new Error(`replica ${name} exited:\n${replica.output}`);
    return answers(port, '/v2/health/ready');
  });
  return replica;
}

function replica(name: ReplicaName): Replica {
  const r = replicas.get(name);
  if (r === undefined) throw new Error(`no replica ${name}`);
  return r;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** HAProxy's per-server view (`show stat` on its admin socket): sessions served and status. */
async function lbStats(): Promise<Map<string, { sessions: number; status: string }>> {
  const csv = await new Promise<string>((ok, fail) => {
    const s = net.connect(statsSocket);
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('end', () => ok(text));
    s.on('error', fail);
    s.write('show stat\n');
  });
  const rows = new Map<string, { sessions: number; status: string }>();
  for (const line of csv.split('\n')) {
    const f = line.split(',');
    // pxname, svname, qcur, qmax, scur, smax, slim, stot, …, status (column 18)
    if (f[0] === 'replicas' && f[1] !== undefined && f[1] !== 'BACKEND')
      rows.set(f[1], { sessions: Number(f[7]), status: f[17] ?? '' });
  }
  return rows;
}

async function allUp(names: readonly ReplicaName[] = REPLICAS): Promise<boolean> {
  const s = await lbStats();
  return names.every((n) => s.get(n)?.status === 'UP');
}

/** Errors that mean a stopping or killed replica closed the connection: the client retries these. */
function closedByReplica(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  return (
    e.code === 'ECONNRESET' ||
    e.code === 'EPIPE' ||
    /socket hang up|disconnected before secure TLS connection/i.test(e.message ?? '')
  );
}

interface LoopFigures {
  sent: number;
  ok: number;
  retried: number;
  failed: number;
  failures: string[];
  fingerprints: Set<string>;
}

/**
 * Runs `workers` request loops through HAProxy (infer with the demo workload's certificate, each on a
 * fresh connection) while `action` runs, then stops them. A request whose connection was closed by a
 * replica is retried (at most 3 times) and counted; any other outcome than 200 is a failure.
 */
async function underLoop(action: () => Promise<void>, workers = 2): Promise<LoopFigures> {
  const figures: LoopFigures = {
    sent: 0,
    ok: 0,
    retried: 0,
    failed: 0,
    failures: [],
    fingerprints: new Set(),
  };
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop) {
      figures.sent++;
      for (let attempt = 1; ; attempt++) {
        let r: CallResult;
        try {
          r = await call(ports.lb, { ca, path: INFER, json: INFER_BODY, client: demo, timeoutMs: 30_000 });
        } catch (err) {
          if (closedByReplica(err) && attempt <= 3) {
            figures.retried++;
            continue;
          }
          figures.failed++;
          figures.failures.push((err as Error).message);
          break;
        }
        figures.fingerprints.add(r.serverFingerprint);
        if (r.status === 200) figures.ok++;
        else {
          figures.failed++;
          figures.failures.push(`${r.status} ${r.text.slice(0, 200)}`);
        }
        break;
      }
    }
  };
  const loops = Array.from({ length: workers }, () => worker());
  // Some traffic before the action, so it happens under load.
  await until('loop started', () => figures.ok >= 4);
  try {
    await action();
    const after = figures.ok;
    await until('loop goes on after the action', () => figures.ok >= after + 6);
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  return figures;
}

function report(
  phase: string,
  f: LoopFigures,
  before: Map<string, { sessions: number }>,
  after: Map<string, { sessions: number }>,
): void {
  const per = REPLICAS.map(
    (n) => `${n}=${(after.get(n)?.sessions ?? 0) - (before.get(n)?.sessions ?? 0)}`,
  ).join(' ');
  console.log(
    `scale-out: ${phase}: sent ${f.sent}, ok ${f.ok}, retried ${f.retried}, failed ${f.failed}; per replica (HAProxy sessions) ${per}`,
  );
}

beforeAll(async () => {
  execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: ROOT, stdio: 'inherit' });
  dir = mkdtempSync(join(tmpdir(), 'shield-scale-out-'));
  pki = await initDevPki({ dir: join(dir, 'pki'), clients: ['demo', 'sample-model', 'intruder'] });
  ca = readFileSync(pki.caCert, 'utf8');
  demo = {
    certPem: readFileSync(pki.clientCert('demo'), 'utf8'),
    keyPem: readFileSync(pki.clientKey('demo'), 'utf8'),
  };
  intruder = {
    certPem: readFileSync(pki.clientCert('intruder'), 'utf8'),
    keyPem: readFileSync(pki.clientKey('intruder'), 'utf8'),
  };
  redis = await startRedis();
  ports.idp = await freePort();
  ports.llm = await freePort();
  ports.lb = await freePort();
  const replicaPorts = [await freePort(), await freePort(), await freePort()];

  helpers.push(
    spawnService(
      binOf('dev-idp', 'shield-idp'),
      {
        SHIELD_IDP_PORT: String(ports.idp),
        SHIELD_IDP_AUDIENCE: PUBLIC_ORIGIN,
        SHIELD_IDP_KEYS_FILE: join(dir, 'idp', 'jwks.json'),
      },
      'dev IdP',
    ),
    spawnService(
      binOf('llm-standin', 'shield-llm-standin'),
      { SHIELD_LLM_PORT: String(ports.llm) },
      'LLM stand-in',
    ),
  );
  await until('dev IdP', () => answers(ports.idp, '/.well-known/openid-configuration'));
  // Without a token the stand-in answers 401: it is up (as `npm start` checks it).
  await until(
    'LLM stand-in',
    async () => (await call(ports.llm, { ca, path: '/v1/models', client: demo })).status < 500,
  );

  await Promise.all(REPLICAS.map((name, i) => startReplica(name, replicaPorts[i] ?? 0)));

  statsSocket = join(dir, 'haproxy.sock');
  const cfg = join(dir, 'haproxy.cfg');
  mkdirSync(join(dir, 'haproxy'), { recursive: true });
  writeFileSync(
    cfg,
    [
      'global',
      `  stats socket ${statsSocket} mode 600 level admin`,
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 60s',
      '  timeout server 60s',
      // A replica that refuses the connection (stopped, killed): try again, on another replica.
      '  retries 3',
      '  option redispatch 1',
      'frontend shield',
      `  bind 127.0.0.1:${ports.lb}`,
      '  default_backend replicas',
      'backend replicas',
      '  balance roundrobin',
      // The sample's readiness route over TLS, verified against the CA: a replica leaves the
      // rotation as soon as SIGTERM starts its drain (503), before its listener closes.
      '  option httpchk',
      '  http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host localhost',
      '  http-check expect status 200',
      ...REPLICAS.map(
        (n, i) =>
          `  server ${n} 127.0.0.1:${replicaPorts[i] ?? 0} check check-ssl verify required ca-file ${pki.caCert} check-sni localhost inter 200 fall 1 rise 2`,
      ),
      '',
    ].join('\n'),
  );
  haproxy = spawn(HAPROXY, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  haproxy.stdout?.on('data', (d: Buffer) => (haproxyOutput += d.toString()));
  haproxy.stderr?.on('data', (d: Buffer) => (haproxyOutput += d.toString()));
  await until('HAProxy with three replicas up', () => {
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited:\n${haproxyOutput}`);
    return allUp();
  });
}, 240_000);

afterAll(async () => {
  for (const r of replicas.values()) if (r.child.exitCode === null) r.child.kill('SIGKILL');
  for (const c of helpers) if (c.exitCode === null) c.kill('SIGKILL');
  if (haproxy?.exitCode === null) haproxy.kill('SIGKILL');
  await Promise.all([...[...replicas.values()].map((r) => exited(r.child)), ...helpers.map(exited)]);
  if (haproxy) await exited(haproxy);
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('three replicas behind HAProxy (TCP, TLS passed through), one Redis', () => {
  it('are three processes, each serving through the balancer', async () => {
    const pids = new Set(REPLICAS.map((n) => replica(n).child.pid));
    expect(pids.size).toBe(3);
    expect(pids.has(process.pid)).toBe(false);
    const before = await lbStats();
    for (let i = 0; i < 6; i++)
      expect((await call(ports.lb, { ca, path: '/v2/health/ready' })).status).toBe(200);
    const after = await lbStats();
    for (const n of REPLICAS)
      expect(after.get(n)?.sessions ?? 0).toBeGreaterThan(before.get(n)?.sessions ?? 0);
  });

  it('the client certificate reaches the replica: the demo workload may infer, another workload may not', async () => {
    const ok = await call(ports.lb, { ca, path: INFER, json: INFER_BODY, client: demo });
    expect(ok.status).toBe(200);
    const other = await call(ports.lb, { ca, path: INFER, json: INFER_BODY, client: intruder });
    expect(other.status).toBe(403);
    const none = await call(ports.lb, { ca, path: INFER, json: INFER_BODY });
    expect(none.status).toBe(401);
    // The certificate the client saw is the replicas' own: HAProxy did not terminate TLS.
    const direct = await call(replica('r1').port, { ca, path: '/v2/health/live' });
    expect(ok.serverFingerprint).toBe(direct.serverFingerprint);
  });

  it('a DPoP proof accepted by one replica is refused by another (replay store in Redis)', async () => {
    const secret = loadDevIdpClientsFile(CLIENTS_FILE).clients.find(
      (c) => c.clientId === 'demo-service',
    )?.clientSecret;
    if (secret === undefined) throw new Error('no demo-service secret');
    const who = await DpopClient.create('demo-service');
    const issuer = new URL(`https://localhost:${ports.idp}`);
    const customFetch = routedFetch(ca, 0);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { [oauth.customFetch]: customFetch }),
    );
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      who.client,
      oauth.ClientSecretBasic(secret),
      new URLSearchParams({ scope: 'models:infer' }),
      { DPoP: who.handle, [oauth.customFetch]: customFetch },
    );
    const { access_token: token, token_type: type } = await oauth.processClientCredentialsResponse(
      as,
      who.client,
      res,
    );
    expect(type.toLowerCase()).toBe('dpop');
    const path = '/v2/models/fraud-lr';
    const proof = await who.proof('GET', path, token);
    const headers = { dpop: proof };
    const a = await call(replica('r1').port, { ca, path, headers, authorization: `DPoP ${token}` });
    expect(a.status).toBe(200);
    const b = await call(replica('r2').port, { ca, path, headers, authorization: `DPoP ${token}` });
    expect(b.status).toBe(401);
    expect(b.body['code']).toBe('ERR_DPOP_PROOF_REPLAYED');
    // A fresh proof with the same token is fine on the other replica: only the proof was spent.
    const fresh = await who.proof('GET', path, token);
    const c = await call(replica('r2').port, {
      ca,
      path,
      headers: { dpop: fresh },
      authorization: `DPoP ${token}`,
    });
    expect(c.status).toBe(200);
  });

  it(`a budget of ${BUDGET} requests a minute is ${BUDGET} across the three`, async () => {
    // Budgets count per UTC minute (Redis's clock): start early in one, so all calls share it.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 12_000) await sleep(left + 100);
    const before = await lbStats();
    const statuses: number[] = [];
    for (let i = 0; i < BUDGET + 3; i++) {
      const r = await call(ports.lb, {
        ca,
        path: '/v1/chat/completions',
        json: { model: 'standin-chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 },
        client: demo,
      });
      statuses.push(r.status);
    }
    const after = await lbStats();
    const per = REPLICAS.map((n) => (after.get(n)?.sessions ?? 0) - (before.get(n)?.sessions ?? 0));
    console.log(
      `scale-out: budget ${BUDGET}/min: statuses ${statuses.join(' ')}; per replica ${per.join(' ')}`,
    );
    expect(statuses).toEqual([...Array<number>(BUDGET).fill(200), 429, 429, 429]);
    // Round robin: every replica answered some of them, so each counted the others' calls.
    for (const n of per) expect(n).toBeGreaterThan(0);
  });

  it('a certificate rotation under a request loop loses no request', async () => {
    const before = await lbStats();
    const oldFingerprint = (await call(ports.lb, { ca, path: '/v2/health/live' })).serverFingerprint;
    let newFingerprint = '';
    const figures = await underLoop(async () => {
      const authority = await DevCertificateAuthority.load(ca, readFileSync(pki.caKey, 'utf8'));
      const next = await authority.issueServer({ hosts: ['localhost', '127.0.0.1'] });
      newFingerprint = next.fingerprint256;
      // Written as a deployment tool (or cert-manager's Secret update) does: new files renamed in.
      writeFileSync(`${pki.serverKey}.next`, next.keyPem, { mode: 0o600 });
      writeFileSync(`${pki.serverCert}.next`, next.certPem);
      renameSync(`${pki.serverKey}.next`, pki.serverKey);
      renameSync(`${pki.serverCert}.next`, pki.serverCert);
      for (const n of REPLICAS)
        await until(`replica ${n} serves the new certificate`, async () => {
          const r = await call(replica(n).port, { ca, path: '/v2/health/live' });
          return r.serverFingerprint === newFingerprint;
        });
    });
    report('certificate rotation', figures, before, await lbStats());
    expect(newFingerprint).not.toBe(oldFingerprint);
    expect(figures.failures).toEqual([]);
    expect(figures.failed).toBe(0);
    // Both certificates were served through the balancer during the loop.
    expect(figures.fingerprints.has(oldFingerprint)).toBe(true);
    expect(figures.fingerprints.has(newFingerprint)).toBe(true);
  }, 120_000);

  it('a rolling restart (SIGTERM, one replica at a time) under a request loop loses no request', async () => {
    const before = await lbStats();
    const oldPids = REPLICAS.map((n) => replica(n).child.pid);
    const figures = await underLoop(async () => {
      for (const n of REPLICAS) {
        const r = replica(n);
        r.child.kill('SIGTERM');
        await exited(r.child);
        expect(r.child.exitCode).toBe(0);
        await startReplica(n, r.port);
        await until(`HAProxy sees ${n} up again`, () => allUp());
      }
    });
    report('rolling restart', figures, before, await lbStats());
    const newPids = REPLICAS.map((n) => replica(n).child.pid);
    for (const pid of newPids) expect(oldPids).not.toContain(pid);
    expect(figures.failures).toEqual([]);
    expect(figures.failed).toBe(0);
  }, 180_000);

  it('a replica killed with SIGKILL leaves the others serving', async () => {
    const before = await lbStats();
    let afterKill = 0;
    const figures = await underLoop(async () => {
      const victim = replica('r2');
      victim.child.kill('SIGKILL');
      await exited(victim.child);
      expect(victim.child.signalCode).toBe('SIGKILL');
      await until(
        'HAProxy marks r2 down',
        async () => (await lbStats()).get('r2')?.status.startsWith('DOWN') ?? false,
      );
      afterKill = (await lbStats()).get('r2')?.sessions ?? 0;
    });
    const after = await lbStats();
    report('SIGKILL of r2', figures, before, after);
    expect(figures.failures).toEqual([]);
    expect(figures.failed).toBe(0);
    // Once down, r2 got no more sessions; r1 and r3 served the loop.
    expect(after.get('r2')?.sessions).toBe(afterKill);
    expect(after.get('r1')?.status).toBe('UP');
    expect(after.get('r3')?.status).toBe('UP');
    expect(await answers(ports.lb, '/v2/health/ready')).toBe(true);
  }, 120_000);
});
