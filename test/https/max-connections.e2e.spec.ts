import 'reflect-metadata';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import type { HttpsAdapterChoice, HttpsApp } from '@inference-shield/https';
import { HelloAppModule } from './fixtures/hello.app.js';
import { CaptureLogger, startApp } from '../support/harness.js';
import { handshake } from './support/clients.js';

const MAX = 3;

/** A TLS connection that completed its handshake, held open. */
function openConnection(port: number, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** The warnings among what Nest's Logger was given (`<message> <context>`). */
const warningsOf = (logger: CaptureLogger): string[] =>
  logger.lines.filter((l) => l.startsWith('warn ')).map((l) => l.slice('warn '.length));

describe.each<HttpsAdapterChoice>(['express', 'fastify'])('limits.maxConnections (%s)', (adapter) => {
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;
  const logger = new CaptureLogger();

  beforeAll(async () => {
    ({ pki, https, port } = await startApp(HelloAppModule, {
      limits: { maxConnections: MAX },
      logger,
      adapter,
    }));
  });

  afterAll(async () => {
    await https?.close();
  });

  it('closes a connection past the cap before its handshake, and serves again once one closes', async () => {
    const held = await Promise.all(Array.from({ length: MAX }, () => openConnection(port, pki.ca.certPem)));
    try {
      const refused = await handshake(port, { ca: pki.ca.certPem });
      expect(refused.ok).toBe(false);
      // Closed by the server on accept: the client sees a reset or a closed socket, never a TLS alert.
      expect(['ECONNRESET', 'CLOSED', 'EPIPE']).toContain(refused.code);
      expect(warningsOf(logger).some((w) => w.includes(`limits.maxConnections (${MAX}) reached`))).toBe(true);
      expect(warningsOf(logger).join('\n')).not.toContain('127.0.0.1');

      held.pop()?.destroy();
      // The server counts the closed connection out; the next one gets in.
      let accepted = await handshake(port, { ca: pki.ca.certPem });
      for (let i = 0; i < 20 && !accepted.ok; i++) {
        await new Promise((r) => setTimeout(r, 50));
        accepted = await handshake(port, { ca: pki.ca.certPem });
      }
      expect(accepted.ok).toBe(true);
    } finally {
      for (const socket of held) socket.destroy();
    }
  });
});

describe('limits.maxConnectionsPerAddress', () => {
  const PER_ADDRESS = 2;
  const perAddressLog = new CaptureLogger();
  let pki: TestPki;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    ({ pki, https, port } = await startApp(HelloAppModule, {
      limits: { maxConnectionsPerAddress: PER_ADDRESS },
      logger: perAddressLog,
    }));
  });

  afterAll(async () => {
    await https?.close();
  });

  it('closes one connection too many from one address, not from another', async () => {
    const held = await Promise.all(
      Array.from({ length: PER_ADDRESS }, () => openConnection(port, pki.ca.certPem)),
    );
    try {
      expect((await handshake(port, { ca: pki.ca.certPem })).ok).toBe(false);
      expect(warningsOf(perAddressLog)).toContainEqual(
        expect.stringContaining(`limits.maxConnectionsPerAddress (${PER_ADDRESS}) for one address reached`),
      );
      expect(warningsOf(perAddressLog).join('\n')).not.toContain('127.0.0.1');
      // Another client address (Linux routes all of 127/8 to loopback) still gets in.
      expect(
        (await handshake(port, { ca: pki.ca.certPem, localAddress: '127.0.0.2' } as ConnectionOptions)).ok,
      ).toBe(true);
    } finally {
      for (const socket of held) socket.destroy();
    }
    let again = await handshake(port, { ca: pki.ca.certPem });
    for (let i = 0; i < 20 && !again.ok; i++) {
      await new Promise((r) => setTimeout(r, 50));
      again = await handshake(port, { ca: pki.ca.certPem });
    }
    expect(again.ok).toBe(true);
  });
});
