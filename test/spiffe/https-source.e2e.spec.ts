/**
 * Inbound TLS from the Workload API: a real HTTPS app (the harness's startApp, createHttpsApp) whose
 * server certificate and client CAs come from a WorkloadApiSource through `tls.source`. Rotation
 * under a request loop loses no request, a connection already open keeps its certificate, a CA
 * dropped from the bundle is refused on new handshakes, and an agent restart leaves the app serving.
 */
import 'reflect-metadata';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkloadApiSource, x509TlsSource, type X509SvidMaterial } from '@inference-shield/spiffe';
import { call, CaptureLogger, startApp, type TestApp } from '../support/harness.js';
import { PeerAppModule, type PeerAnswer } from '../https/fixtures/peer.app.js';
import {
  DevCertificateAuthority,
  derOf,
  issueSvid,
  startWorkloadApi,
  type TestWorkloadApi,
} from './support/workload-api.server.js';

const ID = 'spiffe://shield.local/inference';
const CALLER = 'spiffe://shield.local/caller';
const PARTNER = 'spiffe://partner.example/caller';

let ca: DevCertificateAuthority;
let partnerCa: DevCertificateAuthority;
let agent: TestWorkloadApi;
let source: WorkloadApiSource;
let app: TestApp;
let caller: { certPem: string; keyPem: string };
let partner: { certPem: string; keyPem: string };
const logger = new CaptureLogger();
const sourceLines: string[] = [];

function nextX509(): Promise<X509SvidMaterial> {
  return new Promise((resolve) => {
    const stop = source.onX509((m) => {
      stop();
      resolve(m);
    });
  });
}

/** The X509SVIDResponse with a fresh SVID, trusting our CA and, unless `dropPartner`, the partner's. */
async function svidAnswer(dropPartner = false) {
  const svid = await issueSvid(ca, ID);
  return {
    svid,
    answer: {
      svids: [svid],
      federated_bundles: (dropPartner
        ? {}
        : { 'spiffe://partner.example': derOf(partnerCa.certPem) }) as Record<string, Buffer>,
    },
  };
}

function get(path: string, client = caller) {
  return call(app.port, { ca: ca.certPem, path, client });
}

/** A kept-alive TLS connection to the app, and a way to send one request on it. */
async function openConnection(): Promise<{
  fingerprint: string;
  request(path: string): Promise<string>;
  close(): void;
}> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port: app.port,
    servername: 'localhost',
    ca: ca.certPem,
    cert: caller.certPem,
    key: caller.keyPem,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const fingerprint = (socket.getPeerX509Certificate()?.fingerprint256 ?? '')
    .replaceAll(':', '')
    .toLowerCase();
  return {
    fingerprint,
    request: (path) =>
      new Promise<string>((resolve, reject) => {
        socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')));
        socket.once('error', reject);
        socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      }),
    close: () => socket.destroy(),
  };
}

beforeAll(async () => {
  ca = await DevCertificateAuthority.create({ commonName: 'shield.local SPIFFE CA' });
  partnerCa = await DevCertificateAuthority.create({ commonName: 'partner.example SPIFFE CA' });
  caller = await ca.issueClient({ spiffeId: CALLER });
  partner = await partnerCa.issueClient({ spiffeId: PARTNER });
  agent = await startWorkloadApi();
  agent.setX509((await svidAnswer()).answer);
  source = await WorkloadApiSource.connect({
    address: agent.address,
    reconnectInitialDelayMs: 20,
    reconnectMaxDelayMs: 200,
    logger: {
      log: (m) => sourceLines.push(m),
      warn: (m) => sourceLines.push(m),
      error: (m) => sourceLines.push(m),
    },
  });
  app = await startApp(PeerAppModule, {
    tls: { cert: undefined, key: undefined, source: x509TlsSource(source) },
    mtls: { mode: 'required', ca: { tlsSource: true } },
    logger,
  });
});

afterAll(async () => {
  await app?.close();
  source?.close();
  await agent?.close();
});

describe('tls.source from the Workload API', () => {
  it('serves the X.509-SVID and admits callers of every trusted trust domain', async () => {
    const res = await get('/peer');
    expect(res.status).toBe(200);
    expect(res.serverFingerprint).toBe(source.x509().fingerprint256);
    expect((res.body as unknown as PeerAnswer).subjectAltName).toBe(`URI:${CALLER}`);
    const fromPartner = await get('/peer', partner);
    expect((fromPartner.body as unknown as PeerAnswer).subjectAltName).toBe(`URI:${PARTNER}`);
    expect(app.https.certificate().files).toEqual({ cert: 'tls.source', key: 'tls.source' });
  });

  it('rotates under a request loop with zero failed requests; an open connection keeps its certificate', async () => {
    const before = source.x509().fingerprint256;
    // A connection opened before the rotation, used after it.
    const open = await openConnection();
    try {
      expect(open.fingerprint).toBe(before);
      const { svid, answer } = await svidAnswer();
      let rotated = false;
      const seen = nextX509().then(() => {
        rotated = true;
      });
      const results: { status: number; fingerprint: string }[] = [];
      const failures: unknown[] = [];
      const loop = async (): Promise<void> => {
        // Requests before, during and after the rotation, each on a fresh connection.
        for (let i = 0; !rotated || i < 10; i++) {
          try {
            const res = await get('/hello');
            results.push({ status: res.status, fingerprint: res.serverFingerprint });
          } catch (err) {
            failures.push(err);
          }
          if (i === 3) agent.setX509(answer);
          if (i > 2000) break;
        }
      };
      await Promise.all([loop(), loop(), loop(), seen]);
      expect(failures).toEqual([]);
      expect(results.every((r) => r.status === 200)).toBe(true);
      const fingerprints = new Set(results.map((r) => r.fingerprint));
      expect(fingerprints).toEqual(new Set([before, svid.fingerprint256]));
      expect(results.at(-1)?.fingerprint).toBe(svid.fingerprint256);
      expect(app.https.certificate().fingerprint256).toBe(svid.fingerprint256);
      // The connection opened before the rotation still answers, on the old certificate.
      expect(await open.request('/hello')).toMatch(/^HTTP\/1\.1 200 /);
      expect(open.fingerprint).toBe(before);
    } finally {
      open.close();
    }
  });

  it('refuses callers of a CA the bundle drops, on new handshakes', async () => {
    expect((await get('/hello', partner)).status).toBe(200);
    const { answer } = await svidAnswer(true);
    const seen = nextX509();
    agent.setX509(answer);
    expect((await seen).bundles.has('partner.example')).toBe(false);
    await expect(get('/hello', partner)).rejects.toThrow();
    expect((await get('/hello', caller)).status).toBe(200);
    // Restored: the partner is admitted again.
    const back = nextX509();
    agent.setX509((await svidAnswer()).answer);
    await back;
    expect((await get('/hello', partner)).status).toBe(200);
  });

  it('keeps serving through an agent restart, with the status saying stale meanwhile', async () => {
    const serving = source.x509().fingerprint256;
    await agent.stop();
    for (let i = 0; i < 200 && source.status().state !== 'stale'; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(source.status()).toMatchObject({ state: 'stale', connected: false });
    const during = await get('/hello');
    expect(during.status).toBe(200);
    expect(during.serverFingerprint).toBe(serving);
    const { svid, answer } = await svidAnswer();
    agent.setX509(answer);
    const seen = nextX509();
    await agent.start();
    await seen;
    expect((await get('/hello')).serverFingerprint).toBe(svid.fingerprint256);
    expect(source.status().state).toBe('ready');
  });

  it('logs no key material, from the app or the source', () => {
    const all = [...logger.lines, ...sourceLines].join('\n');
    expect(all).not.toContain('PRIVATE KEY');
    expect(all).not.toContain(source.x509().keyPem.split('\n')[1]);
    expect(logger.lines.some((l) => l.includes('TLS certificate reloaded from tls.source'))).toBe(true);
  });
});

describe('start-up refusals', () => {
  it('refuses { tlsSource: true } without tls.source, and tls.source with cert files', async () => {
    await expect(
      startApp(PeerAppModule, { mtls: { mode: 'required', ca: { tlsSource: true } } }),
    ).rejects.toThrow(/"mtls.ca" is \{ tlsSource: true \} but "tls.source" is not set/);
    await expect(startApp(PeerAppModule, { tls: { source: x509TlsSource(source) } })).rejects.toThrow(
      /"tls.source" replaces "tls.cert" and "tls.key"/,
    );
  });

  it('refuses to start on a source whose material is not a server certificate', async () => {
    const client = await ca.issueClient({ spiffeId: CALLER });
    const bad = {
      current: () => ({ cert: client.certPem, key: client.keyPem }),
      subscribe: () => () => undefined,
    };
    await expect(
      startApp(PeerAppModule, { tls: { cert: undefined, key: undefined, source: bad } }),
    ).rejects.toMatchObject({
      code: 'ERR_CERT_USAGE',
    });
  });
});

describe('a refused change of a source', () => {
  it('keeps the certificate in use and reports the refusal', async () => {
    const first = await ca.issueServer();
    const other = await ca.issueServer();
    let material: { cert: string; key: string } = { cert: first.certPem, key: first.keyPem };
    let notify = (): void => undefined;
    const source = {
      current: () => material,
      subscribe: (onChange: () => void) => {
        notify = onChange;
        return () => undefined;
      },
    };
    const refused: string[] = [];
    const own = await startApp(PeerAppModule, {
      tls: { cert: undefined, key: undefined, source },
      reload: { onReloadError: (err) => refused.push(err.code) },
    });
    try {
      const before = await call(own.port, { ca: ca.certPem, path: '/hello' });
      expect(before.serverFingerprint).toBe(first.fingerprint256);
      // A certificate with another certificate's key: refused, the first one stays.
      material = { cert: first.certPem, key: other.keyPem };
      notify();
      expect(refused).toEqual(['ERR_CERT_KEY_MISMATCH']);
      expect((await call(own.port, { ca: ca.certPem, path: '/hello' })).serverFingerprint).toBe(
        first.fingerprint256,
      );
      // A valid one is taken.
      material = { cert: other.certPem, key: other.keyPem };
      notify();
      expect((await call(own.port, { ca: ca.certPem, path: '/hello' })).serverFingerprint).toBe(
        other.fingerprint256,
      );
    } finally {
      await own.close();
    }
  });
});
