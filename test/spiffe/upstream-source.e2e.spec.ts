/**
 * Outbound mTLS from the Workload API: an upstream client whose client certificate is the
 * X.509-SVID of a WorkloadApiSource (`clientCertificateSource`). New connections present each new
 * SVID; a request in flight on an old connection finishes on it.
 */
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createUpstreamRegistry,
  type UpstreamClient,
  type UpstreamRegistry,
} from '@inference-shield/upstream';
import { WorkloadApiSource, x509TlsSource } from '@inference-shield/spiffe';
import { deferred, httpsServer } from '../upstream/upstream-fixtures.js';
import {
  DevCertificateAuthority,
  issueSvid,
  startWorkloadApi,
  type TestWorkloadApi,
} from './support/workload-api.server.js';

const ID = 'spiffe://shield.local/inference';

let ca: DevCertificateAuthority;
let agent: TestWorkloadApi;
let source: WorkloadApiSource;
let server: Awaited<ReturnType<typeof httpsServer>>;
let registry: UpstreamRegistry;
let client: UpstreamClient;
const holding = deferred();
const release = deferred();

beforeAll(async () => {
  ca = await DevCertificateAuthority.create({ commonName: 'shield.local SPIFFE CA' });
  const upstreamCert = await ca.issueServer();
  agent = await startWorkloadApi();
  agent.setX509({ svids: [await issueSvid(ca, ID)] });
  source = await WorkloadApiSource.connect({
    address: agent.address,
    logger: { log() {}, warn() {}, error() {} },
  });
  server = await httpsServer(
    {
      cert: upstreamCert.certPem,
      key: upstreamCert.keyPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      req.resume();
      const peer = (req.socket as TLSSocket).getPeerX509Certificate();
      const answer = `${(peer?.fingerprint256 ?? '').replaceAll(':', '').toLowerCase()} ${peer?.subjectAltName ?? ''}`;
      if (req.url === '/v1/hold') {
        holding.resolve();
        void release.promise.then(() => res.end(answer));
      } else {
        res.end(answer);
      }
    },
  );
  registry = await createUpstreamRegistry({
    upstreams: {
      svc: {
        baseUrl: `https://localhost:${server.port}/v1`,
        ca: { pem: ca.certPem },
        clientCertificateSource: x509TlsSource(source, { trust: false }),
      },
    },
  });
  client = registry.client('svc');
});

afterAll(async () => {
  release.resolve();
  await registry?.close();
  await server?.close();
  source?.close();
  await agent?.close();
});

async function presented(path = 'who'): Promise<string> {
  const res = await client.request({ path });
  return res.body.text();
}

it('presents the X.509-SVID as the client certificate', async () => {
  expect(await presented()).toMatch(new RegExp(`^${source.x509().fingerprint256} .*URI:${ID}`));
});

it('new connections present the rotated SVID; the request in flight finishes on the old one', async () => {
  const before = source.x509().fingerprint256;
  const inFlight = presented('hold');
  await holding.promise;
  const next = await issueSvid(ca, ID);
  const seen = new Promise<void>((resolve) => {
    const stop = source.onX509(() => {
      stop();
      resolve();
    });
  });
  agent.setX509({ svids: [next] });
  await seen;
  expect(await presented()).toMatch(new RegExp(`^${next.fingerprint256} `));
  release.resolve();
  expect(await inFlight).toMatch(new RegExp(`^${before} `));
});

it('refuses clientCertificateSource together with clientCertificate', async () => {
  await expect(
    createUpstreamRegistry({
      upstreams: {
        svc: {
          baseUrl: `https://localhost:${server.port}/v1`,
          clientCertificate: { cert: 'a.pem', key: 'a-key.pem' },
          clientCertificateSource: x509TlsSource(source, { trust: false }),
        },
      },
    }),
  ).rejects.toThrow(/clientCertificateSource" replaces/);
});

it('keeps the current client certificate when a source offers a broken one', async () => {
  const good = await ca.issueClient({ spiffeId: 'spiffe://shield.local/other' });
  const stranger = await ca.issueClient({ spiffeId: 'spiffe://shield.local/stranger' });
  let material: { cert: string; key: string } = { cert: good.certPem, key: good.keyPem };
  let notify = (): void => undefined;
  const own = await createUpstreamRegistry({
    upstreams: {
      svc: {
        baseUrl: `https://localhost:${server.port}/v1`,
        ca: { pem: ca.certPem },
        clientCertificateSource: {
          current: () => material,
          subscribe: (onChange: () => void) => {
            notify = onChange;
            return () => undefined;
          },
        },
      },
    },
  });
  try {
    const ask = async (): Promise<string> => (await own.client('svc').request({ path: 'who' })).body.text();
    expect(await ask()).toMatch(new RegExp(`^${good.fingerprint256} `));
    material = { cert: good.certPem, key: stranger.keyPem };
    notify();
    expect(await ask()).toMatch(new RegExp(`^${good.fingerprint256} `));
    expect(own.client('svc').stats().certificateReloads).toBe(0);
    material = { cert: stranger.certPem, key: stranger.keyPem };
    notify();
    expect(await ask()).toMatch(new RegExp(`^${stranger.fingerprint256} `));
    expect(own.client('svc').stats().certificateReloads).toBe(1);
  } finally {
    await own.close();
  }
});
