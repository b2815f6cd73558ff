/**
 * WorkloadApiSource against a real Workload API server (grpc-js, the vendored proto, a unix socket),
 * issuing from the dev PKI: start-up, the security header, rotation, malformed updates, agent
 * restarts, JWT-SVIDs and JWT bundles.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { WorkloadApiSource, type X509SvidMaterial } from '@inference-shield/spiffe';
import {
  DevCertificateAuthority,
  issueSvid,
  startWorkloadApi,
  status,
  TestWorkloadApi,
} from './support/workload-api.server.js';

const ID = 'spiffe://shield.local/inference';
const lines: string[] = [];
const logger = {
  log: (m: string) => lines.push(`log ${m}`),
  warn: (m: string) => lines.push(`warn ${m}`),
  error: (m: string) => lines.push(`error ${m}`),
};

let ca: DevCertificateAuthority;
let agent: TestWorkloadApi;
const sources: WorkloadApiSource[] = [];

async function connect(
  extra: Parameters<typeof WorkloadApiSource.connect>[0] = {},
): Promise<WorkloadApiSource> {
  const source = await WorkloadApiSource.connect({
    address: agent.address,
    startupTimeoutMs: 5000,
    reconnectInitialDelayMs: 20,
    reconnectMaxDelayMs: 200,
    logger,
    ...extra,
  });
  sources.push(source);
  return source;
}

function nextX509(source: WorkloadApiSource): Promise<X509SvidMaterial> {
  return new Promise((resolve) => {
    const stop = source.onX509((m) => {
      stop();
      resolve(m);
    });
  });
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(check()).toBe(true);
}

beforeAll(async () => {
  ca = await DevCertificateAuthority.create({ commonName: 'SPIFFE test CA' });
  agent = await startWorkloadApi();
});

afterEach(() => {
  for (const s of sources.splice(0)) s.close();
});

afterAll(async () => {
  await agent?.close();
});

describe('start-up', () => {
  it('delivers the X.509-SVID, its key and the bundle as PEM, and sends the security header', async () => {
    const svid = await issueSvid(ca, ID);
    agent.setX509({ svids: [svid] });
    const source = await connect();
    const m = source.x509();
    expect(m.spiffeId).toBe(ID);
    expect(m.trustDomain).toBe('shield.local');
    expect(m.fingerprint256).toBe(svid.fingerprint256);
    expect(
      new X509Certificate(m.certPem).checkPrivateKey(
        (await import('node:crypto')).createPrivateKey(m.keyPem),
      ),
    ).toBe(true);
    expect(new X509Certificate(m.bundlesPem).ca).toBe(true);
    expect([...m.bundles.keys()]).toEqual(['shield.local']);
    expect(source.status()).toMatchObject({ state: 'ready', connected: true, spiffeId: ID });
    expect(agent.calls.filter((c) => c.method === 'FetchX509SVID').every((c) => c.header === 'true')).toBe(
      true,
    );
  });

  it('waits for an agent that has no identity yet, then refuses with ERR_SPIFFE_AGENT_UNAVAILABLE', async () => {
    agent.setX509({ fail: status.PERMISSION_DENIED });
    await expect(connect({ startupTimeoutMs: 300 })).rejects.toMatchObject({
      code: 'ERR_SPIFFE_AGENT_UNAVAILABLE',
      message: expect.stringContaining('PERMISSION_DENIED'),
    });
  });

  it('refuses after the bound when no agent listens on the socket', async () => {
    await expect(
      WorkloadApiSource.connect({
        address: `unix://${agent.dir}/nobody.sock`,
        startupTimeoutMs: 300,
        logger,
      }),
    ).rejects.toMatchObject({
      code: 'ERR_SPIFFE_AGENT_UNAVAILABLE',
      message: expect.stringContaining('nobody.sock'),
    });
  });

  it('starts once the agent gets an identity within the bound', async () => {
    agent.setX509({ fail: status.PERMISSION_DENIED });
    const svid = await issueSvid(ca, ID);
    setTimeout(() => agent.setX509({ svids: [svid] }), 150);
    const source = await connect({ startupTimeoutMs: 5000 });
    expect(source.x509().fingerprint256).toBe(svid.fingerprint256);
  });
});

describe('rotation and refusals', () => {
  it('announces a rotation and serves the new SVID', async () => {
    agent.setX509({ svids: [await issueSvid(ca, ID)] });
    const source = await connect();
    const next = await issueSvid(ca, ID);
    const seen = nextX509(source);
    agent.setX509({ svids: [next] });
    expect((await seen).fingerprint256).toBe(next.fingerprint256);
    expect(source.x509().fingerprint256).toBe(next.fingerprint256);
  });

  it.each([
    [
      'a key of another certificate',
      async (good: Awaited<ReturnType<typeof issueSvid>>) => ({
        ...good,
        x509_svid_key: (await issueSvid(ca, ID)).x509_svid_key,
      }),
    ],
    [
      "a SPIFFE ID other than the certificate's",
      async (good: Awaited<ReturnType<typeof issueSvid>>) => ({
        ...good,
        spiffe_id: 'spiffe://shield.local/other',
      }),
    ],
    [
      'a truncated chain',
      async (good: Awaited<ReturnType<typeof issueSvid>>) => ({
        ...good,
        x509_svid: good.x509_svid.subarray(0, 40),
      }),
    ],
    [
      'a bundle of another CA',
      async (good: Awaited<ReturnType<typeof issueSvid>>) => ({
        ...good,
        bundle: (await issueSvid(await DevCertificateAuthority.create(), ID)).bundle,
      }),
    ],
    [
      'an expired certificate',
      async () =>
        issueSvid(ca, ID, {
          notBefore: new Date(Date.now() - 7200_000),
          notAfter: new Date(Date.now() - 3600_000),
        }),
    ],
    [
      'the leaf as its own bundle (not a CA)',
      async (good: Awaited<ReturnType<typeof issueSvid>>) => ({ ...good, bundle: good.x509_svid }),
    ],
  ])('refuses an update with %s and keeps the previous SVID', async (_name, make) => {
    const good = await issueSvid(ca, ID);
    agent.setX509({ svids: [good] });
    const source = await connect();
    lines.length = 0;
    agent.setX509({ svids: [await make(good)] });
    await until(() => lines.some((l) => l.startsWith('error X.509-SVID update refused')));
    expect(source.x509().fingerprint256).toBe(good.fingerprint256);
    expect(source.status().state).toBe('stale');
    // Nothing of the key in any line.
    const keyB64 = good.x509_svid_key.toString('base64').slice(20, 60);
    expect(lines.join('\n')).not.toContain(keyB64);
    expect(lines.join('\n')).not.toContain('PRIVATE KEY');
  });
});

describe('agent restarts', () => {
  it('keeps the last SVID while the agent is away, says stale, and resumes when it returns', async () => {
    const first = await issueSvid(ca, ID);
    agent.setX509({ svids: [first] });
    const source = await connect();
    await agent.stop();
    await until(() => source.status().state === 'stale');
    expect(source.status().connected).toBe(false);
    expect(source.x509().fingerprint256).toBe(first.fingerprint256);
    expect(() => source.assertReady()).not.toThrow();
    expect(() => source.assertReady({ allowStale: false })).toThrow(
      expect.objectContaining({ code: 'ERR_SPIFFE_NOT_READY' }),
    );
    const second = await issueSvid(ca, ID);
    agent.setX509({ svids: [second] });
    const seen = nextX509(source);
    await agent.start();
    expect((await seen).fingerprint256).toBe(second.fingerprint256);
    await until(() => source.status().state === 'ready');
  });

  it('reports expired once the last SVID expires while the agent is away', async () => {
    const shortLived = await issueSvid(ca, ID, { notAfter: new Date(Date.now() + 1500) });
    agent.setX509({ svids: [shortLived] });
    const source = await connect();
    await agent.stop();
    await until(() => source.status().state === 'expired');
    expect(() => source.x509()).toThrow(expect.objectContaining({ code: 'ERR_SPIFFE_NOT_READY' }));
    expect(() => source.assertReady()).toThrow(expect.objectContaining({ code: 'ERR_SPIFFE_NOT_READY' }));
    await agent.start();
  });
});

describe('JWT-SVIDs', () => {
  it('fetches a JWT-SVID per audience, caches it, and refreshes it ahead of expiry', async () => {
    agent.setX509({ svids: [await issueSvid(ca, ID)] });
    agent.jwtSvidTtlSeconds = 4;
    const source = await connect();
    const before = agent.jwtSvidsIssued;
    const a = await source.jwtSvid('https://sts.example');
    expect(a.spiffeId).toBe(ID);
    expect(a.audience).toEqual(['https://sts.example']);
    expect(a.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(await source.jwtSvid('https://sts.example')).toBe(a);
    expect(agent.jwtSvidsIssued).toBe(before + 1);
    const other = await source.jwtSvid(['https://b.example', 'https://a.example']);
    expect(other.token).not.toBe(a.token);
    // Past half its lifetime, the next call fetches a fresh one before the old one expires.
    await until(() => Date.now() >= a.issuedAt!.getTime() + 2100);
    const b = await source.jwtSvid('https://sts.example');
    expect(b.token).not.toBe(a.token);
    expect(a.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(agent.calls.filter((c) => c.method === 'FetchJWTSVID').every((c) => c.header === 'true')).toBe(
      true,
    );
    agent.jwtSvidTtlSeconds = 60;
  });

  it('serves the cached JWT-SVID when the agent fails, and refuses once none is usable', async () => {
    agent.setX509({ svids: [await issueSvid(ca, ID)] });
    agent.jwtSvidTtlSeconds = 60;
    const source = await connect();
    const cached = await source.jwtSvid('https://cached.example');
    agent.jwtFailure = status.UNAVAILABLE;
    try {
      // Not yet due for refresh: the cached one, with no call.
      expect(await source.jwtSvid('https://cached.example')).toBe(cached);
      await expect(source.jwtSvid('https://never.example')).rejects.toMatchObject({
        code: 'ERR_SPIFFE_JWT_SVID_UNAVAILABLE',
      });
    } finally {
      agent.jwtFailure = undefined;
    }
  });

  it.each([[''], [[]], [['ok', '']], [42]])(
    'refuses a bad audience %j with a TypeError',
    async (audience) => {
      agent.setX509({ svids: [await issueSvid(ca, ID)] });
      const source = await connect();
      await expect(source.jwtSvid(audience as string)).rejects.toThrow(TypeError);
    },
  );
});

describe('JWT bundles', () => {
  it('streams the JWT bundles per trust domain and announces changes', async () => {
    agent.setX509({ svids: [await issueSvid(ca, ID)] });
    agent.setJwtBundles({ 'spiffe://shield.local': await agent.jwks() });
    const source = await connect({ jwtBundles: true });
    const bundle = source.jwtBundles().get('shield.local');
    expect(bundle?.keys).toHaveLength(1);
    expect(bundle?.keys[0]).toMatchObject({ kty: 'EC', kid: 'test-jwt-key-1' });
    const changed = new Promise<ReadonlyMap<string, unknown>>((resolve) => source.onJwtBundles(resolve));
    agent.setJwtBundles({
      'spiffe://shield.local': await agent.jwks(),
      'spiffe://partner.example': Buffer.from('{"keys":[]}'),
    });
    expect([...(await changed).keys()].sort()).toEqual(['partner.example', 'shield.local']);
  });

  it('refuses a bundle holding a private key and keeps the previous one', async () => {
    agent.setX509({ svids: [await issueSvid(ca, ID)] });
    agent.setJwtBundles({ 'spiffe://shield.local': await agent.jwks() });
    const source = await connect({ jwtBundles: true });
    lines.length = 0;
    const { exportJWK } = await import('jose');
    const priv = await exportJWK(agent.jwtKey.privateKey);
    agent.setJwtBundles({ 'spiffe://shield.local': Buffer.from(JSON.stringify({ keys: [priv] })) });
    await until(() => lines.some((l) => l.startsWith('error JWT bundle update refused')));
    expect(source.jwtBundles().get('shield.local')?.keys[0]).not.toHaveProperty('d');
    expect(lines.join('\n')).not.toContain(String(priv.d));
  });
});
