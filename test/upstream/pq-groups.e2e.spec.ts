/**
 * Issue #15 §4, outbound: the upstream client offers the hybrid post-quantum group X25519MLKEM768
 * first where the runtime's OpenSSL offers it (Node 24/26, OpenSSL 3.5), with key shares for it and
 * X25519, then X25519, P-256 and P-384; on Node 20 (OpenSSL 3.0) the classical groups.
 *
 * The proof is an upstream that accepts the hybrid and nothing else: a request can only reach it
 * by negotiating X25519MLKEM768 (a server-side socket does not name the group), and a classical
 * client is refused by the same server, so the check can fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import {
  createUpstreamRegistry,
  type UpstreamOptions,
  type UpstreamRegistry,
} from '@inference-shield/upstream';
import { ECDH_CURVES } from '@inference-shield/https';
import { codeOf, connectProxy, httpsServer, testPki } from './upstream-fixtures.js';

const [major = 0, minor = 0] = (process.versions.openssl ?? '0.0').split('.').map(Number);
const PQ = major > 3 || (major === 3 && minor >= 5);
const NO_PQ = `Node ${process.version} has OpenSSL ${process.versions.openssl}, without ML-KEM: needs Node 24/26 (OpenSSL 3.5)`;

let pki: Awaited<ReturnType<typeof testPki>>;
const registries: UpstreamRegistry[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pki = await testPki();
});

afterAll(async () => {
  await Promise.all(registries.map((r) => r.close()));
  for (const close of closers) await close();
  pki?.cleanup();
});

/** An HTTPS upstream with only the given groups, answering every request with its path. */
async function upstream(ecdhCurve: string): Promise<number> {
  const server = await httpsServer(
    { cert: pki.server.certPem, key: pki.server.keyPem, ecdhCurve },
    (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url }));
    },
  );
  closers.push(() => server.close());
  return server.port;
}

async function client(port: number, extra: Partial<UpstreamOptions> = {}) {
  const registry = await createUpstreamRegistry({
    upstreams: {
      t: {
        baseUrl: `https://localhost:${port}/v1`,
        ca: { file: pki.ca.cert },
        timeouts: { connectMs: 3000, headersMs: 3000, bodyIdleMs: 3000 },
        ...extra,
      },
    },
  });
  registries.push(registry);
  return registry.client('t');
}

/** A plain undici client with the classical groups: the control that must be refused. */
async function classicalClientReaches(port: number): Promise<boolean> {
  const agent = new Agent({ connect: { ca: pki.ca.certPem, ecdhCurve: ECDH_CURVES } });
  try {
    const res = await request(`https://localhost:${port}/v1/models`, { dispatcher: agent });
    await res.body.dump();
    return true;
  } catch {
    return false;
  } finally {
    await agent.close();
  }
}

describe('key-exchange groups of the upstream client', () => {
  it('reaches an upstream that accepts X25519MLKEM768 only (fetch and request)', async (ctx) => {
    ctx.skip(!PQ, NO_PQ);
    const port = await upstream('X25519MLKEM768');
    const c = await client(port);
    const res = await c.fetch('models');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path: '/v1/models' });
    const r = await c.request({ path: 'models' });
    expect(r.statusCode).toBe(200);
    await r.body.dump();
    // Control: a classical client cannot reach the same upstream.
    expect(await classicalClientReaches(port)).toBe(false);
  });

  it('reaches an upstream that accepts X25519MLKEM768 only through the egress proxy', async (ctx) => {
    ctx.skip(!PQ, NO_PQ);
    const port = await upstream('X25519MLKEM768');
    const proxy = await connectProxy();
    closers.push(() => proxy.close());
    const c = await client(port, { egressProxy: { url: `http://127.0.0.1:${proxy.port}` } });
    const res = await c.fetch('models');
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(proxy.connects).toEqual([`CONNECT localhost:${port} HTTP/1.1`]);
  });

  it("offers its own list, not Node's defaults: an upstream with X448 only is refused", async () => {
    // Node's default client groups include X448 (and FFDHE); ours do not. Control: a client with
    // Node's defaults reaches the same upstream.
    const port = await upstream('X448');
    const c = await client(port);
    expect(await codeOf(c.fetch('models'))).toBe('ERR_UPSTREAM_TLS');
    const agent = new Agent({ connect: { ca: pki.ca.certPem } });
    const res = await request(`https://localhost:${port}/v1/models`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    await agent.close();
  });

  it.each([
    ['X25519 only', 'X25519'],
    ['P-256 only', 'P-256'],
    ['the classical list', ECDH_CURVES],
  ])('still reaches a classical upstream offering %s', async (_name, curve) => {
    const port = await upstream(curve);
    const c = await client(port);
    const res = await c.fetch('models');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path: '/v1/models' });
  });
});
