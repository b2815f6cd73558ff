/**
 * A Workload API agent that misbehaves (compromised, buggy, or an impostor on the socket path):
 * oversized messages, floods of SVIDs, an SVID of another trust domain signed by a CA it brings
 * along, JWT-SVIDs that are not what was asked. The client refuses each one, keeps the last valid
 * material, and never logs key material or tokens.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { WorkloadApiSource } from '@inference-shield/spiffe';
import {
  DevCertificateAuthority,
  issueSvid,
  startWorkloadApi,
  type TestWorkloadApi,
} from '../../spiffe/support/workload-api.server.js';

const ID = 'spiffe://shield.local/inference';
const lines: string[] = [];
const logger = {
  log: (m: string) => lines.push(m),
  warn: (m: string) => lines.push(m),
  error: (m: string) => lines.push(m),
};

let ca: DevCertificateAuthority;
let agent: TestWorkloadApi;
let source: WorkloadApiSource;
let good: Awaited<ReturnType<typeof issueSvid>>;

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(check()).toBe(true);
}

beforeAll(async () => {
  ca = await DevCertificateAuthority.create();
  agent = await startWorkloadApi();
  good = await issueSvid(ca, ID);
  agent.setX509({ svids: [good] });
  source = await WorkloadApiSource.connect({
    address: agent.address,
    reconnectInitialDelayMs: 20,
    reconnectMaxDelayMs: 100,
    logger,
  });
});

afterEach(() => {
  agent.jwtSvidOverride = undefined;
  agent.setX509({ svids: [good] });
});

afterAll(async () => {
  source?.close();
  await agent?.close();
});

it('refuses a message over 4 MiB without reading it, and keeps the SVID', async () => {
  lines.length = 0;
  agent.setX509({ svids: [{ ...good, bundle: Buffer.alloc(5 * 1024 * 1024, 0x30) }] });
  await until(() => lines.some((l) => l.includes('RESOURCE_EXHAUSTED')));
  expect(source.x509().fingerprint256).toBe(good.fingerprint256);
  expect(source.status().state).toBe('stale');
});

it('refuses a flood of 1000 SVIDs', async () => {
  lines.length = 0;
  agent.setX509({ svids: Array.from({ length: 1000 }, () => good) });
  await until(() => lines.some((l) => l.includes('more than 32')));
  expect(source.x509().fingerprint256).toBe(good.fingerprint256);
});

it('refuses an SVID of our ID issued by a CA the agent slips into the bundle of another trust domain', async () => {
  lines.length = 0;
  const rogue = await DevCertificateAuthority.create({ commonName: 'rogue' });
  const forged = await issueSvid(rogue, ID, { bundle: [ca.certPem] });
  // The rogue CA is offered only as a "federated" bundle: it must not vouch for our own trust domain.
  agent.setX509({
    svids: [forged],
    federated_bundles: { 'spiffe://rogue.example': Buffer.from(forged.bundle) },
  });
  await until(() => lines.some((l) => l.includes('does not chain')));
  expect(source.x509().fingerprint256).toBe(good.fingerprint256);
});

it.each([
  ['unsigned (alg none)', () => `${b64({ alg: 'none' })}.${b64({ sub: ID, aud: ['a'], exp: later() })}.`],
  ['HMAC-signed', () => `${b64({ alg: 'HS256' })}.${b64({ sub: ID, aud: ['a'], exp: later() })}.c2ln`],
  [
    'for another workload',
    () =>
      `${b64({ alg: 'ES256' })}.${b64({ sub: 'spiffe://shield.local/x', aud: ['a'], exp: later() })}.c2ln`,
  ],
  [
    'for another audience',
    () => `${b64({ alg: 'ES256' })}.${b64({ sub: ID, aud: ['b'], exp: later() })}.c2ln`,
  ],
  ['already expired', () => `${b64({ alg: 'ES256' })}.${b64({ sub: ID, aud: ['a'], exp: 1 })}.c2ln`],
  ['20 KB long', () => `${'a'.repeat(20_000)}.b.c`],
])('refuses a JWT-SVID %s from the agent', async (_name, make) => {
  agent.jwtSvidOverride = make();
  await expect(source.jwtSvid('a')).rejects.toMatchObject({ code: 'ERR_SPIFFE_SVID_INVALID' });
});

it('logs no key material and no token', () => {
  const all = lines.join('\n');
  expect(all).not.toContain('PRIVATE KEY');
  expect(all).not.toContain(good.x509_svid_key.toString('base64').slice(30, 70));
});

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function later(): number {
  return Math.floor(Date.now() / 1000) + 300;
}
