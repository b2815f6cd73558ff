/**
 * Issue #15 §4: inbound TLS prefers the hybrid post-quantum group X25519MLKEM768 where the
 * runtime's OpenSSL offers it (Node 24/26, OpenSSL 3.5), then X25519 and the NIST curves; on
 * Node 20 (OpenSSL 3.0) the classical groups are in force and the start-up log says so.
 *
 * The client is Node's own TLS client (this machine's `openssl` 3.0 cannot offer ML-KEM). On
 * OpenSSL 3.5 the client names the negotiated group (`getEphemeralKeyInfo()` gives
 * `{ type: 'TLSGroup', name: 'X25519MLKEM768' }`); a client offering the hybrid alone is the proof
 * that does not rely on that: it can only connect by negotiating it, as the classical control shows.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECDH_CURVES, PQ_ECDH_CURVES } from '@inference-shield/https';
import { HelloAppModule } from './fixtures/hello.app.js';
import { CaptureLogger, startApp, type TestApp } from '../support/harness.js';

/** OpenSSL 3.5 brought ML-KEM; read from the version, apart from the code under test. */
const [major = 0, minor = 0] = (process.versions.openssl ?? '0.0').split('.').map(Number);
const PQ = major > 3 || (major === 3 && minor >= 5);
const NO_PQ = `Node ${process.version} has OpenSSL ${process.versions.openssl}, without ML-KEM: needs Node 24/26 (OpenSSL 3.5)`;

interface Outcome {
  ok: boolean;
  /** The group the client reports, e.g. `X25519MLKEM768`, `X25519`, `prime256v1`. */
  group?: string;
  protocol?: string | null;
  /** First line of the HTTP answer. */
  status?: string;
  code?: string;
}

/** Handshake with the given groups, send one request, read the status line of the answer. */
function connectWith(port: number, ca: string, tls: ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...tls });
    let settled = false;
    const done = (o: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done({ ok: false, code: 'DEADLINE' }), 5000);
    socket.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, code: e.code ?? e.message }));
    socket.on('close', () => done({ ok: false, code: 'CLOSED' }));
    socket.on('secureConnect', () => {
      const group = socket.getEphemeralKeyInfo();
      const protocol = socket.getProtocol();
      socket.write('GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      socket.once('data', (d: Buffer) =>
        done({
          ok: true,
          group: group !== null && 'name' in group ? group.name : undefined,
          protocol,
          status: d.toString('latin1').split('\r\n')[0],
        }),
      );
    });
  });
}

describe('key-exchange groups of the HTTPS bootstrap', () => {
  const logger = new CaptureLogger();
  let app: TestApp;
  let ca: string;
  /** Negative control: a Node server with the classical groups only. */
  let classical: Server;
  let classicalPort: number;

  beforeAll(async () => {
    app = await startApp(HelloAppModule, { logger });
    ca = app.pki.ca.certPem;
    classical = createServer(
      {
        cert: readFileSync(app.pki.server.cert),
        key: readFileSync(app.pki.server.key),
        ecdhCurve: ECDH_CURVES,
      },
      (_req, res) => res.end('ok'),
    );
    classical.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => classical.listen(0, '127.0.0.1', resolve));
    classicalPort = (classical.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await app?.close();
    classical?.closeAllConnections();
    await new Promise((resolve) => classical?.close(resolve));
  });

  it(`states the groups in force once, at start-up (OpenSSL ${process.versions.openssl})`, () => {
    const lines = logger.lines.filter((l) => l.includes('key exchange groups'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^log TLS policy: TLSv1\.2 and up, key exchange groups /);
    if (PQ) {
      expect(lines[0]).toContain('X25519MLKEM768, X25519, P-256, P-384 (post-quantum hybrid');
    } else {
      expect(lines[0]).toContain(
        `X25519, P-256, P-384 (classical only: OpenSSL ${process.versions.openssl} offers no X25519MLKEM768`,
      );
    }
  });

  it.each([
    ['X25519', 'TLSv1.3', 'X25519'],
    ['P-256', 'TLSv1.3', 'prime256v1'],
    ['P-384', 'TLSv1.3', 'secp384r1'],
    ['P-256', 'TLSv1.2', 'prime256v1'],
  ])('a classical client offering only %s over %s still connects', async (curve, version, group) => {
    const r = await connectWith(app.port, ca, {
      ecdhCurve: curve,
      maxVersion: version as 'TLSv1.2' | 'TLSv1.3',
    });
    expect(r).toMatchObject({ ok: true, protocol: version, group, status: 'HTTP/1.1 200 OK' });
  });

  it('a client offering only X25519MLKEM768 negotiates it', async (ctx) => {
    ctx.skip(!PQ, NO_PQ);
    const r = await connectWith(app.port, ca, { ecdhCurve: 'X25519MLKEM768' });
    expect(r).toMatchObject({
      ok: true,
      protocol: 'TLSv1.3',
      group: 'X25519MLKEM768',
      status: 'HTTP/1.1 200 OK',
    });
    // Control: the same client is refused by a server without the hybrid, so a pass above means
    // the hybrid was negotiated, not something else.
    const refused = await connectWith(classicalPort, ca, { ecdhCurve: 'X25519MLKEM768' });
    expect(refused.ok).toBe(false);
  });

  it.for([
    ["Node's default groups (key shares for X25519MLKEM768 and X25519)", undefined],
    ['our own client list', PQ_ECDH_CURVES],
    ['a key share for X25519 only, the hybrid listed second (HelloRetryRequest)', '*X25519:X25519MLKEM768'],
  ] as const)('prefers the hybrid over X25519 for a client sending %s', async ([, curve], ctx) => {
    ctx.skip(!PQ, NO_PQ);
    const r = await connectWith(app.port, ca, curve === undefined ? {} : { ecdhCurve: curve });
    expect(r).toMatchObject({ ok: true, group: 'X25519MLKEM768', status: 'HTTP/1.1 200 OK' });
    // Control: the classical server takes X25519 from the same client.
    const control = await connectWith(classicalPort, ca, curve === undefined ? {} : { ecdhCurve: curve });
    expect(control).toMatchObject({ ok: true, group: 'X25519' });
  });

  it('on OpenSSL 3.0 the hybrid cannot even be offered, hence the classical fallback', (ctx) => {
    ctx.skip(PQ, `OpenSSL ${process.versions.openssl} offers ML-KEM`);
    // In a child process: a refused group list leaves an error on OpenSSL's queue that would trip
    // this process's next key parse (see core's tls-suites.ts).
    const probe = "require('node:tls').createSecureContext({ ecdhCurve: 'X25519MLKEM768' })";
    expect(() => execFileSync(process.execPath, ['-e', probe], { stdio: 'pipe' })).toThrow(
      /Failed to set ECDH curve/,
    );
  });
});
