/**
 * Issue #14 §3: the upstream refusing our client certificate is its own code,
 * ERR_UPSTREAM_CLIENT_CERT_REFUSED (502), with the TLS alert in the log and never in the body.
 *
 * On TLS 1.3 the server judges our certificate after our side of the handshake is done: its alert
 * arrives on the first read, and undici 7 reports `other side closed` in its place. These tests
 * prove the alert is recovered, with the real stand-in LLM and a real OpenSSL server, on the Node
 * this runs on (run on 20 / OpenSSL 3.0 and 26 / OpenSSL 3.5: the alert codes are spelt apart).
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Controller, Module, Post, Req, Res } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core';
import {
  createUpstreamRegistry,
  InjectUpstreamProxy,
  UpstreamModule,
  UpstreamProxy,
  type UpstreamRegistry,
} from '@inference-shield/upstream';
import { createLlmStandin, type LlmStandin } from '../../apps/llm-standin/src/llm-standin.server.js';
import { CaptureLogger, startApp, type TestApp } from '../support/harness.js';
import { testPki } from './upstream-fixtures.js';

const API_KEY = 'sk-standin-test-key-0001';
const BODY = JSON.stringify({ model: 'standin-chat', messages: [{ role: 'user', content: 'hello' }] });

let pki: Awaited<ReturnType<typeof testPki>>;
let keyFile: string;
let standin: LlmStandin;
const servers: { close(): Promise<void> }[] = [];
const registries: UpstreamRegistry[] = [];

beforeAll(async () => {
  pki = await testPki();
  keyFile = join(pki.dir, 'llm-api-key');
  writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
  standin = await createLlmStandin({
    port: 0,
    cert: pki.server.cert,
    key: pki.server.key,
    ca: pki.ca.cert,
    crl: pki.ca.crl,
    apiKeys: [API_KEY],
  });
});

afterAll(async () => {
  await Promise.all(registries.map((r) => r.close()));
  await Promise.all(servers.map((s) => s.close()));
  await standin?.close();
  pki?.cleanup();
});

type ClientCert = { cert: string; key: string } | undefined;

function upstream(url: string, clientCert: ClientCert) {
  return {
    baseUrl: `${url}/v1`,
    ca: { file: pki.ca.cert },
    ...(clientCert !== undefined
      ? { clientCertificate: { cert: clientCert.cert, key: clientCert.key, watch: false } }
      : {}),
    apiKey: { file: keyFile },
  };
}

/** One call through our client; its outcome as a code (or "accepted"), and the error. */
async function call(url: string, clientCert: ClientCert, path = 'chat/completions') {
  const registry = await createUpstreamRegistry({ upstreams: { llm: upstream(url, clientCert) } });
  registries.push(registry);
  const client = registry.client('llm');
  try {
    const base = client.baseUrl.endsWith('/') ? client.baseUrl : `${client.baseUrl}/`;
    const res = await client.fetch(new URL(path, base), {
      method: path === '' ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json' },
      ...(path === '' ? {} : { body: BODY }),
    });
    await res.arrayBuffer();
    return { outcome: res.ok ? 'accepted' : `status ${res.status}`, error: undefined };
  } catch (err) {
    if (!isShieldError(err)) throw err;
    return { outcome: err.code, error: err };
  }
}

/**
 * `openssl s_server` requiring a client certificate of the test CA and verifying it inside the
 * handshake (`-verify_return_error`): a refusal is a TLS alert naming the reason, as hosted LLM
 * front ends (nginx, Envoy, cloud load balancers terminating mTLS in OpenSSL or BoringSSL) send.
 */
async function opensslMtlsServer(extra: string[] = []): Promise<{ url: string; close(): Promise<void> }> {
  const child: ChildProcess = spawn(
    'openssl',
    [
      's_server',
      '-accept',
      '0',
      '-cert',
      pki.server.cert,
      '-key',
      pki.server.key,
      '-CAfile',
      pki.ca.cert,
      '-Verify',
      '3',
      '-verify_return_error',
      '-www',
      ...extra,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`openssl s_server did not start: ${out}`));
    }, 10_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /ACCEPT .*:(\d+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`openssl s_server exited with ${code}: ${out}`));
    });
  });
  const server = {
    url: `https://localhost:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
  servers.push(server);
  return server;
}

describe('the stand-in LLM refusing our client certificate', () => {
  it('with a certificate of its CA, the call goes through (the control)', async () => {
    expect((await call(standin.url, pki.client)).outcome).toBe('accepted');
  });

  it('no client certificate: ERR_UPSTREAM_CLIENT_CERT_REFUSED, alert "certificate required" in detail', async () => {
    const { outcome, error } = await call(standin.url, undefined);
    expect(outcome).toBe('ERR_UPSTREAM_CLIENT_CERT_REFUSED');
    expect(error?.details.detail).toMatch(
      /^TLS alert "certificate required" \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\)$/,
    );
    expect(error?.status).toBe(502);
  });

  it('a certificate of another CA: refused, but Node sends no alert, so the code cannot say why', async () => {
    // Node's TLS server checks the client chain after the handshake and closes the socket: no alert
    // goes out (OpenSSL's verify callback always says yes in Node). From the client this cannot be
    // told from a server that accepted us and closed before answering (checked below), so it stays
    // the generic code rather than a guess. (A reset or a close, as the packets race.)
    const { outcome } = await call(standin.url, pki.otherCa.client);
    expect(outcome).toMatch(/^ERR_UPSTREAM_(CONNECT|BAD_RESPONSE)$/);
  });
});

describe('closing without an answer looks the same when the server accepted us', () => {
  it('a server that takes our certificate, reads the request and closes: the generic code', async () => {
    const server = createHttpsServer(
      {
        cert: pki.server.certPem,
        key: pki.server.keyPem,
        ca: pki.ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req) => req.socket.destroy(),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    });
    const { port } = server.address() as AddressInfo;
    const { outcome } = await call(`https://localhost:${port}`, pki.client);
    expect(outcome).toMatch(/^ERR_UPSTREAM_(CONNECT|BAD_RESPONSE)$/);
  });
});

describe('an OpenSSL mTLS front end refusing our client certificate', () => {
  it('with a certificate of its CA, the call goes through (the control)', async () => {
    const server = await opensslMtlsServer();
    expect((await call(server.url, pki.client, '')).outcome).toBe('accepted');
  });

  it.each<[string, () => ClientCert, RegExp]>([
    ['no certificate', () => undefined, /"certificate required"/],
    ['a certificate of another CA', () => pki.otherCa.client, /"unknown ca"/],
  ])('%s: ERR_UPSTREAM_CLIENT_CERT_REFUSED with the alert', async (_name, clientCert, alert) => {
    const server = await opensslMtlsServer();
    const { outcome, error } = await call(server.url, clientCert(), '');
    expect(outcome).toBe('ERR_UPSTREAM_CLIENT_CERT_REFUSED');
    expect(error?.details.detail).toMatch(alert);
  });

  it('a revoked certificate (CRL checked by the server): alert "certificate revoked"', async () => {
    const server = await opensslMtlsServer(['-CRL', pki.ca.crl, '-crl_check']);
    const { outcome, error } = await call(server.url, pki.revoked.client, '');
    expect(outcome).toBe('ERR_UPSTREAM_CLIENT_CERT_REFUSED');
    expect(error?.details.detail).toMatch(/"certificate revoked"/);
  });

  it('on TLS 1.2 the alert comes inside the handshake, and is mapped the same', async () => {
    const server = await opensslMtlsServer(['-tls1_2']);
    const { outcome, error } = await call(server.url, pki.otherCa.client, '');
    expect(outcome).toBe('ERR_UPSTREAM_CLIENT_CERT_REFUSED');
    expect(error?.details.detail).toMatch(/"unknown ca"/);
  });
});

describe('through the proxy: the alert in the log, not in the body', () => {
  const logger = new CaptureLogger();
  let app: TestApp;

  beforeAll(async () => {
    @Controller('v1')
    class RelayController {
      constructor(@InjectUpstreamProxy('llm') private readonly llm: UpstreamProxy) {}

      @Post('chat/completions')
      chat(@Req() req: never, @Res() res: never): Promise<void> {
        return this.llm.forward(req, res, { path: 'chat/completions' });
      }
    }
    @Module({
      imports: [UpstreamModule.forRoot({ upstreams: { llm: upstream(standin.url, undefined) } })],
      controllers: [RelayController],
    })
    class AppModule {}
    app = await startApp(AppModule, { pki, logger });
  });

  afterAll(async () => {
    await app?.close();
  });

  it('answers 502 ERR_UPSTREAM_CLIENT_CERT_REFUSED; the log names the alert; the body does not', async () => {
    const res = await app.call('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BODY,
    });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ code: 'ERR_UPSTREAM_CLIENT_CERT_REFUSED' });
    expect(res.text).not.toMatch(/alert|certificate required|ERR_SSL/i);
    const line = logger.lines.find((l) => l.includes('forward failed: ERR_UPSTREAM_CLIENT_CERT_REFUSED'));
    expect(line).toMatch(/TLS alert "certificate required"/);
    expect(logger.lines.join('\n')).not.toContain('hello');
  });
});
