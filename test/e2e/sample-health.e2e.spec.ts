/**
 * #17 §2 on the sample: its probes (`/health/live`, `/health/ready` through terminus, and KServe's
 * `/v2/health/*`) behind the real bootstrap. On close() (what SIGTERM calls) readiness turns 503 at
 * once while the sample keeps serving through its drain delay, then the listener closes.
 */
import 'reflect-metadata';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Module } from '@nestjs/common';
import { APP_FILTER, HttpAdapterHost } from '@nestjs/core';
import { ShieldExceptionFilter } from '@inference-shield/core';
import { describe, expect, it } from 'vitest';
import { SampleModelModule } from '../../sample-model/src/inference/sample-model.module.js';
import { startApp } from '../support/harness.js';

const modelsDir = fileURLToPath(new URL('../../sample-model/models/', import.meta.url));

// Coded refusals as the sample answers them (its IdentityModule registers this filter).
@Module({
  imports: [SampleModelModule.forRoot({ modelsDir })],
  providers: [
    {
      provide: APP_FILTER,
      useFactory: (host: HttpAdapterHost) => new ShieldExceptionFilter(host),
      inject: [HttpAdapterHost],
    },
  ],
})
class SampleHealthApp {}

function tcpConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe('the sample health routes', () => {
  it('live and ready answer 200 with their details', async () => {
    const { call, close } = await startApp(SampleHealthApp);
    try {
      const live = await call('/health/live');
      expect(live.status).toBe(200);
      expect(live.body).toMatchObject({ status: 'ok' });
      const ready = await call('/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({
        status: 'ok',
        info: {
          https: { status: 'up', draining: false },
          models: { status: 'up', loaded: ['fraud-lr'] },
          tls: { status: 'up' },
          // No IdentityModule in this app: no issuer to report.
          identity: { status: 'up', oidc: false },
        },
      });
      expect((await call('/v2/health/ready')).status).toBe(200);
    } finally {
      await close();
    }
  });

  it('SIGTERM path: both readiness routes 503 at once, inference still served during the drain, then refused', async () => {
    const { https, call, port } = await startApp(SampleHealthApp, { timeouts: { drainDelayMs: 1500 } });
    const closed = https.close();
    const ready = await call('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({
      status: 'error',
      error: { https: { status: 'down', draining: true } },
    });
    const v2 = await call('/v2/health/ready');
    expect(v2.status).toBe(503);
    expect(v2.body).toEqual({
      code: 'ERR_NOT_READY',
      message: 'The service is not ready.',
    });
    expect((await call('/health/live')).status).toBe(200);
    expect((await call('/v2/models/fraud-lr')).status).toBe(200);
    await closed;
    expect(await tcpConnect(port)).toBe('ECONNREFUSED');
  });
});
