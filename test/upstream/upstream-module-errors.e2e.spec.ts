/**
 * An app that uses UpstreamModule without IdentityModule: a failed upstream call in the app's own
 * handler is a ShieldError, and it must still be answered with its code and status (502), not
 * Nest's bare 500; the app's own HttpExceptions stay as they are.
 */
import 'reflect-metadata';
import { ConflictException, Controller, Get, Module } from '@nestjs/common';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { InjectUpstream, UpstreamModule, type UpstreamClient } from '@inference-shield/upstream';
import { startApp, type TestApp } from '../support/harness.js';
import { recordingTlsServer, testPki, type RecordingServer } from './upstream-fixtures.js';

@Controller()
class CallsController {
  constructor(@InjectUpstream('models') private readonly models: UpstreamClient) {}

  @Get('score')
  async score(): Promise<string> {
    const res = await this.models.request({ method: 'GET', path: 'health' });
    return String(res.statusCode);
  }

  @Get('conflict')
  conflict(): never {
    throw new ConflictException('model already loaded');
  }
}

let pki: Awaited<ReturnType<typeof testPki>>;
let untrusted: RecordingServer;
let app: TestApp;
let caller: Agent;
let base: string;

beforeAll(async () => {
  pki = await testPki();
  // Served with a certificate from another CA: the upstream call fails before a byte is sent.
  untrusted = await recordingTlsServer({ cert: pki.otherCa.server.certPem, key: pki.otherCa.server.keyPem });
  @Module({
    imports: [
      UpstreamModule.forRoot({
        upstreams: {
          models: { baseUrl: `https://localhost:${untrusted.port}/v1`, ca: { file: pki.ca.cert } },
        },
      }),
    ],
    controllers: [CallsController],
  })
  class AppModule {}
  app = await startApp(AppModule, { pki });
  base = app.url;
  caller = new Agent({ connect: { ca: pki.ca.certPem } });
});

afterAll(async () => {
  await caller?.close();
  await app?.close();
  await untrusted?.close();
  pki?.cleanup();
});

it('a failed upstream call in a handler is answered 502 with its code', async () => {
  const res = await request(`${base}/score`, { dispatcher: caller });
  expect(res.statusCode).toBe(502);
  expect(await res.body.json()).toMatchObject({ code: 'ERR_UPSTREAM_CERT_UNTRUSTED' });
  expect(untrusted.bytes).toBe(0);
});

it("the app's own HttpException keeps its status and body", async () => {
  const res = await request(`${base}/conflict`, { dispatcher: caller });
  expect(res.statusCode).toBe(409);
  expect(await res.body.json()).toEqual({
    statusCode: 409,
    message: 'model already loaded',
    error: 'Conflict',
  });
});
