import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { HealthAppModule, healthFixture } from './fixtures/health.app.js';
import { startApp } from '../support/harness.js';

interface Indicator {
  status: string;
  warning?: string;
  items?: { kind: string; name: string; until: string; daysLeft: number }[];
}

describe('HttpsHealthIndicator behind terminus', () => {
  it('ready: up, with the server certificate and the client CA, no warning 14 days out', async () => {
    healthFixture.warnDays = 14;
    const { call, close } = await startApp(HealthAppModule, { mtls: 'optional' });
    try {
      const res = await call('/health/ready');
      expect(res.status).toBe(200);
      const info = res.body.info as Record<string, Indicator>;
      expect(info.https).toEqual({ status: 'up', draining: false });
      expect(info.tls?.status).toBe('up');
      expect(info.tls?.warning).toBeUndefined();
      expect(info.tls?.items?.map((i) => i.kind).sort()).toEqual(['clientCa', 'server']);
      // Public facts only: no PEM, no key.
      expect(res.text).not.toMatch(/BEGIN|PRIVATE/);
    } finally {
      await close();
    }
  });

  it('a certificate within warnDays (the 90-day dev leaf, 100 days) answers 200 with a warning', async () => {
    healthFixture.warnDays = 100;
    const { call, close } = await startApp(HealthAppModule);
    try {
      const res = await call('/health/ready');
      expect(res.status).toBe(200);
      const tls = (res.body.details as Record<string, Indicator>).tls;
      expect(tls?.status).toBe('up');
      expect(tls?.warning).toMatch(/^server certificate .*expires in \d+ day\(s\)/);
    } finally {
      healthFixture.warnDays = 14;
      await close();
    }
  });

  it('turns 503 the moment close() starts, while the app still serves its drain delay', async () => {
    const { https, call } = await startApp(HealthAppModule, { timeouts: { drainDelayMs: 1000 } });
    expect((await call('/health/ready')).status).toBe(200);
    const closed = https.close();
    const res = await call('/health/ready');
    expect(res.status).toBe(503);
    expect((res.body.error as Record<string, Indicator>).https).toEqual({ status: 'down', draining: true });
    expect((await call('/health/hello')).status).toBe(200);
    await closed;
  });
});
