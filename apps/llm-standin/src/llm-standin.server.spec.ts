import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { createLlmStandin, type LlmStandin } from './llm-standin.server.js';

// The stand-in is a dev tool users point their apps at: it holds to the bootstrap's TLS policy
// (issue #13 item 8: Node's defaults offered CBC suites and let a client renegotiate) and answers
// plain HTTP with the bootstrap's coded 400. Checked with real sockets and OpenSSL's own client.

const root = mkdtempSync(join(tmpdir(), 'llm-standin-'));
let pki: TestPki;
let standin: LlmStandin;

beforeAll(async () => {
  pki = await createTestPki(join(root, 'pki'));
  standin = await createLlmStandin({
    port: 0,
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
    apiKeys: ['sk-standin-test-key-0001'],
  });
});

afterAll(async () => {
  await standin.close();
  rmSync(root, { recursive: true, force: true });
});

/** openssl s_client with the test client certificate; whether a session was established. */
function handshake(args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${standin.port}`,
        '-servername',
        'localhost',
        '-CAfile',
        pki.ca.cert,
        '-cert',
        pki.client.cert,
        '-key',
        pki.client.key,
        ...args,
      ],
      { timeout: 10_000 },
      (err, stdout) =>
        resolve(!err && /Cipher is (?!\(NONE\))/.test(stdout) && /Verify return code: 0/.test(stdout)),
    );
    child.stdin?.end('Q\n');
  });
}

describe('stand-in LLM: our TLS policy', () => {
  it.each([
    // The dev certificates are ECDSA: the ECDHE-ECDSA CBC suites are the ones Node would pick.
    [
      'ECDHE-*-AES128-SHA (CBC, Lucky13)',
      ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA'],
    ],
    ['ECDHE-ECDSA-AES256-SHA384 (CBC)', ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-SHA384']],
    ['TLS 1.1', ['-tls1_1']],
  ])('refuses %s', async (_name, args) => {
    expect(await handshake(args)).toBe(false);
  });

  it('accepts TLS 1.2 with an ECDHE AEAD suite, and TLS 1.3', async () => {
    expect(await handshake(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'])).toBe(true);
    expect(await handshake(['-tls1_3'])).toBe(true);
  });

  it('refuses a client-initiated renegotiation', async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: standin.port,
      servername: 'localhost',
      ca: pki.ca.certPem,
      cert: pki.client.certPem,
      key: pki.client.keyPem,
      maxVersion: 'TLSv1.2',
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      const outcome = await new Promise<string>((resolve) => {
        socket.once('error', () => resolve('refused'));
        socket.once('close', () => resolve('refused'));
        const started = socket.renegotiate({}, (err) => resolve(err ? 'refused' : 'renegotiated'));
        if (!started) resolve('refused');
        // Nudge the server so it reads the new ClientHello.
        socket.write('GET /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n');
        setTimeout(() => resolve('no answer'), 5000).unref();
      });
      expect(outcome).toBe('refused');
    } finally {
      socket.destroy();
    }
  });
});

describe('stand-in LLM: plain HTTP', () => {
  it("answers plain HTTP with the bootstrap's 400 ERR_HTTP_TO_HTTPS, not an empty reply", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port: standin.port });
      let data = '';
      socket.setTimeout(5000, () => socket.destroy(new Error('no answer')));
      socket.on('connect', () => socket.write('GET /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n'));
      socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(answer.split('\r\n\r\n')[1] ?? '')).toMatchObject({ code: 'ERR_HTTP_TO_HTTPS' });
  });

  it('closes a connection that sends something that is neither TLS nor HTTP, without an answer', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port: standin.port });
      let data = '';
      socket.setTimeout(5000, () => socket.destroy(new Error('not closed')));
      socket.on('connect', () => socket.write(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])));
      socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    expect(answer).toBe('');
  });
});
