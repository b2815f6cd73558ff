/**
 * The sample's metrics listener (SHIELD_METRICS_PORT): the OpenTelemetry metrics SDK with the
 * Prometheus exporter, served on a port of its own to clients with a certificate of the sample's
 * CA only. Real TLS on loopback with the test PKI: no certificate and another CA's certificate get
 * no handshake; a certificate of the CA gets the metrics of a real app created after the SDK was
 * registered (its guard's decisions, its TLS handshakes, a refused one included); other paths are 404; a malformed port stops the start.
 */
import 'reflect-metadata';
import { connect, type TLSSocket } from 'node:tls';
import { Controller, Get, Module } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Allow, IdentityModule, mtls, Public } from '@inference-shield/identity';
import {
  metricsListenerConfig,
  startMetricsListener,
  type MetricsListener,
} from '../../sample-model/src/metrics.server.js';
import { call, startApp, testPki, type TestApp } from '../support/harness.js';
import type { TestPki } from '@inference-shield/dev-pki';

@Controller()
class ProbeController {
  @Get('open') @Public() open(): string {
    return 'ok';
  }
  @Get('closed') @Allow(mtls()) closed(): string {
    return 'no';
  }
}

let pki: TestPki;
let listener: MetricsListener;
let app: TestApp;
let capped: TestApp;
let held: TLSSocket | undefined;
let port: number;

beforeAll(async () => {
  pki = await testPki('metrics');
  const config = metricsListenerConfig(
    { SHIELD_METRICS_PORT: '1', SHIELD_METRICS_HOST: '127.0.0.1' },
    { host: '127.0.0.1', tls: { cert: pki.server.cert, key: pki.server.key }, mtlsCa: pki.ca.cert },
  );
  if (config === undefined) throw new Error('expected a config');
  // Port 0 for the test (the variable itself must be 1 to 65535).
  listener = await startMetricsListener({ ...config, port: 0 });
  port = Number(new URL(listener.url).port);
  @Module({ imports: [IdentityModule.forRoot({ mtls: {} })], controllers: [ProbeController] })
  class ProbeApp {}
  app = await startApp(ProbeApp, { pki, mtls: 'optional' });
  expect((await call(app.port, { ca: app.ca, path: '/closed' })).status).toBe(401);
  // One connection per address on `capped`: one held open, the next refused at accept.
  @Module({ imports: [IdentityModule.forRoot({ mtls: {} })], controllers: [ProbeController] })
  class CappedApp {}
  capped = await startApp(CappedApp, { pki, mtls: 'optional', limits: { maxConnectionsPerAddress: 1 } });
  held = await new Promise<TLSSocket>((resolve, reject) => {
    const socket = connect({ port: capped.port, host: '127.0.0.1', servername: 'localhost', ca: capped.ca });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
  await expect(call(capped.port, { ca: capped.ca, path: '/open' })).rejects.toThrow();
  // A TLS 1.2 client offering only a CBC suite: the app's policy (ECDHE with AEAD) refuses the
  // handshake, a failure with its reason.
  await new Promise<void>((resolve) => {
    const socket = connect({
      port: app.port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: app.ca,
      maxVersion: 'TLSv1.2',
      ciphers: 'AES128-SHA:@SECLEVEL=0',
    });
    socket.once('error', () => resolve());
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve();
    });
  });
});

afterAll(async () => {
  held?.destroy();
  await capped?.close();
  await app?.close();
  await listener?.close();
});

const scrape = (client?: { certPem: string; keyPem: string }, path = '/metrics') =>
  call(port, {
    ca: pki.ca.certPem,
    path,
    ...(client ? { client: { certPem: client.certPem, keyPem: client.keyPem } } : {}),
  });

describe('the sample metrics listener', () => {
  it('serves Prometheus text to a client certificate of the CA, with the guard decisions', async () => {
    const res = await scrape(pki.client);
    expect(res.status).toBe(200);
    expect(res.text).toMatch(
      /shield_auth_decisions_total\{shield_auth_outcome="deny",shield_auth_method="none",shield_auth_code="ERR_CLIENT_CERT_MISSING"/,
    );
    expect(res.text).toMatch(/shield_tls_handshakes_total\{shield_tls_outcome="ok"/);
    expect(res.text).toMatch(
      /shield_tls_handshakes_total\{shield_tls_outcome="failure",shield_tls_reason="[A-Z0-9_]+"/,
    );
    expect(res.text).toMatch(/shield_certificate_expiry\{shield_certificate_role="server"/);
  });

  it('counts open connections per listening port, and the connection refused at the per-address cap', async () => {
    const res = await scrape(pki.client);
    expect(res.text).toContain(`shield_connections_open{server_port="${capped.port}",`);
    expect(res.text).toMatch(
      new RegExp(`shield_connections_open\\{server_port="${capped.port}",[^}]*\\} 1\\b`),
    );
    expect(res.text).toMatch(
      /shield_connections_refused_total\{shield_connection_limit="maxConnectionsPerAddress",[^}]*\} 1\b/,
    );
  });

  it('refuses a client without a certificate, and one of another CA, at the handshake', async () => {
    await expect(scrape()).rejects.toThrow();
    await expect(scrape(pki.otherCa.client)).rejects.toThrow();
  });

  it('serves nothing else', async () => {
    expect((await scrape(pki.client, '/')).status).toBe(404);
  });

  it.each(['0', '65536', 'x', '80a'])('SHIELD_METRICS_PORT=%s stops the start', (value) => {
    expect(() =>
      metricsListenerConfig(
        { SHIELD_METRICS_PORT: value },
        { host: '127.0.0.1', tls: { cert: 'c', key: 'k' }, mtlsCa: 'ca' },
      ),
    ).toThrow(/SHIELD_METRICS_PORT/);
  });

  it('is off when SHIELD_METRICS_PORT is unset', () => {
    expect(
      metricsListenerConfig({}, { host: 'h', tls: { cert: 'c', key: 'k' }, mtlsCa: 'ca' }),
    ).toBeUndefined();
  });
});
