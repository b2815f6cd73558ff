/**
 * Budgets shared by two relay **processes** over one real `redis-server`: each relay is a child
 * Node process (support/relay-process.mjs, the built packages), with its own HTTPS server and its
 * own Redis connection. One caller alternates between them through the `openai` SDK; the request
 * budget holds across both. The build is brought up to date first (scripts/ensure-built.mjs, as
 * `npm start` does: incremental, well under a second on an unchanged tree).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate } from '@inference-shield/dev-pki';
import { startRedis, type RunningRedis } from '../support/redis-server.js';
import type { TestApp } from '../support/harness.js';
import { sdk, startStandin, workload, type StandinSetup } from './support/relay-fixture.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./support/relay-process.mjs', import.meta.url));
const LIMIT = 6;

let redis: RunningRedis;
let standin: StandinSetup;
let caller: IssuedCertificate;
const children: ChildProcess[] = [];
const relays: { port: number; pid: number; child: ChildProcess }[] = [];
const clients: (OpenAI & { close(): Promise<void> })[] = [];

function startRelay(): Promise<{ port: number; pid: number; child: ChildProcess }> {
  const child = fork(CHILD, [], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      RELAY_PROCESS: JSON.stringify({
        redisUrl: redis.url,
        keyPrefix: `relay-processes-${process.pid}:`,
        limits: { requestsPerMinute: LIMIT, tokensPerMinute: 1_000_000 },
        upstream: standin.upstream(),
        tls: { cert: standin.pki.server.cert, key: standin.pki.server.key, ca: standin.pki.ca.cert },
      }),
    },
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port: number; pid: number }) => resolve({ ...m, child }));
    child.once('exit', (code) => reject(new Error(`relay process exited with ${String(code)}`)));
  });
}

/** The SDK against a relay process (the harness's TestApp shape is all `sdk` reads). */
function client(port: number): OpenAI {
  const app = { url: `https://localhost:${port}`, ca: standin.pki.ca.certPem } as TestApp;
  const c = sdk(app, { client: caller });
  clients.push(c);
  return c;
}

async function status(c: OpenAI): Promise<number> {
  try {
    await c.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError && typeof err.status === 'number') return err.status;
    throw err;
  }
}

beforeAll(async () => {
  execFileSync(process.execPath, ['scripts/ensure-built.mjs'], { cwd: ROOT, stdio: 'inherit' });
  redis = await startRedis();
  standin = await startStandin();
  caller = await workload(standin.pki, 'two-process-caller');
  relays.push(await startRelay(), await startRelay());
}, 240_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const c of children) if (c.connected) c.send('stop');
  await sleep(300);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await redis?.stop();
  await standin?.standin.close();
});

describe('two relay processes, one Redis', () => {
  it('are two processes', () => {
    expect(relays.map((r) => r.pid)).not.toContain(process.pid);
    expect(new Set(relays.map((r) => r.pid)).size).toBe(2);
  });

  it('share one request budget: the calls across both stop at the limit', async () => {
    // Budgets count per UTC minute (Redis's clock): start early in one, so all calls share it.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 15_000) await sleep(left + 50);
    const [a, b] = relays.map((r) => client(r.port));
    if (a === undefined || b === undefined) throw new Error('two relays expected');
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 4; i++) statuses.push(await status(i % 2 === 0 ? a : b));
    expect(statuses).toEqual([...Array<number>(LIMIT).fill(200), 429, 429, 429, 429]);
    // Each process refused some of the calls itself: the count it checked was the other's too.
    const outcomes = await Promise.all(
      relays.map(
        (r) =>
          new Promise<string[]>((resolve) => {
            r.child.once('message', (m: { usage: string[] }) => resolve(m.usage));
            r.child.send('usage');
          }),
      ),
    );
    for (const o of outcomes) {
      expect(o.filter((x) => x === 'ok')).toHaveLength(LIMIT / 2);
      expect(o.filter((x) => x === 'refused')).toHaveLength(2);
    }
  });
});
