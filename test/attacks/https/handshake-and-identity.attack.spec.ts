import 'reflect-metadata';
import {
  createServer as createNetServer,
  connect as tcpConnect,
  type AddressInfo,
  type Socket,
} from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IssuedCertificate, TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { call, testPki } from '../../support/harness.js';
import { rawTcp } from '../../https/support/clients.js';
import { attackCalls, AttackAppModule, type AttackPeerAnswer } from './attack.app.js';

const HANDSHAKE_MS = 500;

/** A real ClientHello from Node's TLS client, captured on a throw-away TCP listener. */
async function captureClientHello(): Promise<Buffer> {
  const sink = createNetServer();
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const got = new Promise<Buffer>((resolve) =>
    sink.once('connection', (s: Socket) =>
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      }),
    ),
  );
  const client = tlsConnect({
    host: '127.0.0.1',
    port: (sink.address() as AddressInfo).port,
    servername: 'localhost',
    rejectUnauthorized: false,
  });
  client.on('error', () => undefined);
  try {
    return await got;
  } finally {
    client.destroy();
    await new Promise((resolve) => sink.close(resolve));
  }
}

/** Send `bytes` one at a time every `everyMs`; resolve when the server closes or at the deadline. */
function trickle(
  port: number,
  bytes: Buffer,
  everyMs: number,
  deadlineMs: number,
): Promise<{ closed: boolean; sent: number }> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || sent >= bytes.length) return;
      socket.write(bytes.subarray(sent, sent + 1));
      sent += 1;
    }, everyMs);
    const deadline = setTimeout(() => finish(false), deadlineMs);
    function finish(closed: boolean): void {
      clearInterval(timer);
      clearTimeout(deadline);
      socket.destroy();
      resolve({ closed, sent });
    }
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
  });
}

describe('TLS handshake limits (THREATS: idle connection that never completes a ClientHello)', () => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    pki = await testPki('hs-attack');
    https = await createHttpsApp(AttackAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      timeouts: { handshakeMs: HANDSHAKE_MS },
      reload: { watch: false, sighup: false },
      nest: { logger: false },
    });
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
  });

  // Node's handshake timer is a socket idle timer; if encrypted bytes restarted it, a ClientHello
  // sent a byte every 100 ms would hold the connection for its whole length (about 35 s here).
  it('closes a connection that trickles a real ClientHello a byte at a time', async () => {
    const hello = await captureClientHello();
    expect(hello.length).toBeGreaterThan(100);
    const r = await trickle(port, hello, 100, HANDSHAKE_MS + 3000);
    expect(r.closed).toBe(true);
    expect(r.sent).toBeLessThan(hello.length);
  });

  it('closes, answering nothing, a connection that opens like TLS and continues as plain HTTP', async () => {
    const before = attackCalls.count;
    const r = await rawTcp(
      port,
      Buffer.concat([Buffer.from([0x16]), Buffer.from('GET /hello HTTP/1.1\r\n\r\n')]),
    );
    expect(r.closed).toBe(true);
    expect(r.data).not.toContain('HTTP/1.1');
    expect(attackCalls.count).toBe(before);
  });
});

describe('forged identities in SANs, read from a real TLS handshake (peerCertificateOf, spiffeIdOf)', () => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    pki = await testPki('san-attack');
    https = await createHttpsApp(AttackAppModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      mtls: { mode: 'required', ca: { file: pki.ca.cert }, crl: pki.ca.crl },
      reload: { watch: false, sighup: false },
      nest: { logger: false },
    });
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
  });

  async function peerOf(client: IssuedCertificate): Promise<AttackPeerAnswer> {
    const r = await call(port, {
      ca: pki.ca.certPem,
      path: '/peer',
      client,
    });
    expect(r.status).toBe(200);
    return JSON.parse(r.text) as AttackPeerAnswer;
  }

  it('a DNS SAN holding ", URI:spiffe://…/admin" does not add a second identity', async () => {
    const client = await pki.ca.authority.issueClient({
      spiffeId: 'spiffe://shield.local/worker',
      dnsNames: ['w.example, URI:spiffe://shield.local/admin'],
    });
    const peer = await peerOf(client);
    expect(peer).toMatchObject({
      verified: true,
      spiffeFromPeer: 'spiffe://shield.local/worker',
      spiffeFromX509: 'spiffe://shield.local/worker',
      uris: ['spiffe://shield.local/worker'],
    });
  });

  it('a DNS SAN holding ", URI:spiffe://…/admin" gives no identity to a certificate without a URI SAN', async () => {
    const client = await pki.ca.authority.issueClient({ dnsNames: ['x, URI:spiffe://shield.local/admin'] });
    const peer = await peerOf(client);
    expect(peer.verified).toBe(true);
    expect(peer.spiffeFromPeer).toBeUndefined();
    expect(peer.spiffeFromX509).toBeUndefined();
    expect(peer.uris).toEqual([]);
  });

  it.each([
    [
      'two identities joined by a comma in one URI SAN',
      'spiffe://shield.local/a, URI:spiffe://shield.local/admin',
    ],
    ['a quote-wrapped identity', '"spiffe://shield.local/admin"'],
    ['an uppercase scheme', 'SPIFFE://shield.local/admin'],
    ['a dot-dot segment', 'spiffe://shield.local/x/../admin'],
    ['a percent-encoded path', 'spiffe://shield.local/%61dmin'],
    ['an NUL byte', 'spiffe://shield.local/admin\u0000.evil'],
  ])('a URI SAN with %s is no SPIFFE identity', async (_name, uri) => {
    const client = await pki.ca.authority.issueClient({ uris: [uri] });
    const peer = await peerOf(client);
    expect(peer.verified).toBe(true);
    expect(peer.spiffeFromPeer).toBeUndefined();
    expect(peer.spiffeFromX509).toBeUndefined();
  });
});
