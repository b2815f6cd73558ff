/**
 * Client certificate rotation from disk: new connections present the new certificate, a request
 * in flight on an old connection finishes, a broken replacement is refused and the current kept.
 */
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createUpstreamRegistry,
  type UpstreamClient,
  type UpstreamRegistry,
} from '@inference-shield/upstream';
import { deferred, httpsServer, testPki } from './upstream-fixtures.js';

let pki: Awaited<ReturnType<typeof testPki>>;
let registry: UpstreamRegistry;
let server: Awaited<ReturnType<typeof httpsServer>>;
let client: UpstreamClient;
const release = deferred();
const holding = deferred();

beforeAll(async () => {
  pki = await testPki();
  copyFileSync(pki.client.cert, join(pki.dir, 'rot.pem'));
  copyFileSync(pki.client.key, join(pki.dir, 'rot-key.pem'));
  server = await httpsServer(
    {
      cert: pki.server.certPem,
      key: pki.server.keyPem,
      ca: pki.ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      req.resume();
      const fingerprint = (req.socket as TLSSocket)
        .getPeerCertificate()
        .fingerprint256.replace(/:/g, '')
        .toLowerCase();
      if (req.url === '/v1/hold') {
        holding.resolve();
        void release.promise.then(() => res.end(fingerprint));
      } else {
        res.end(fingerprint);
      }
    },
  );
  registry = await createUpstreamRegistry({
    upstreams: {
      rot: {
        baseUrl: `https://localhost:${server.port}/v1`,
        ca: { file: pki.ca.cert },
        clientCertificate: { cert: join(pki.dir, 'rot.pem'), key: join(pki.dir, 'rot-key.pem') },
      },
    },
  });
  client = registry.client('rot');
});

afterAll(async () => {
  release.resolve();
  await registry?.close();
  await server?.close();
  pki?.cleanup();
});

async function fingerprint(path = 'who'): Promise<string> {
  const res = await client.request({ path });
  return res.body.text();
}

/** Replace cert and key as cert-manager does: write aside, then rename into place. */
function install(certPem: string, keyPem: string): void {
  writeFileSync(join(pki.dir, 'rot-key.pem.tmp'), keyPem, { mode: 0o600 });
  writeFileSync(join(pki.dir, 'rot.pem.tmp'), certPem);
  renameSync(join(pki.dir, 'rot-key.pem.tmp'), join(pki.dir, 'rot-key.pem'));
  renameSync(join(pki.dir, 'rot.pem.tmp'), join(pki.dir, 'rot.pem'));
}

it('new connections use the new certificate; the request in flight finishes', async () => {
  expect(await fingerprint()).toBe(pki.client.fingerprint256);
  const inFlight = fingerprint('hold');
  await holding.promise;

  const next = await pki.ca.authority.issueClient({
    spiffeId: 'spiffe://shield.local/test-client',
    commonName: 'rotated',
  });
  install(next.certPem, next.keyPem);
  await expect.poll(() => client.stats().certificateReloads, { timeout: 10_000 }).toBe(1);

  expect(await fingerprint()).toBe(next.fingerprint256);
  release.resolve();
  // Started before the rotation, on a connection with the old certificate: it completes.
  expect(await inFlight).toBe(pki.client.fingerprint256);
});

it('a broken replacement is refused and the current certificate kept', async () => {
  const current = await fingerprint();
  writeFileSync(join(pki.dir, 'rot.pem'), 'not a certificate');
  client.reloadClientCertificate();
  expect(client.stats().certificateReloads).toBe(1);
  expect(await fingerprint()).toBe(current);
});
