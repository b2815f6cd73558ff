import 'reflect-metadata';
import { once } from 'node:events';
import { connect } from 'node:tls';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { slowEvents, SlowAppModule } from './fixtures/slow.app.js';
import { call, testPki } from '../support/harness.js';

describe.each(['express', 'fastify'] as const)('graceful shutdown (%s)', (adapter) => {
  let pki: TestPki;

  beforeAll(async () => {
    pki = await testPki('shutdown');
  });

  beforeEach(() => {
    slowEvents.length = 0;
  });

  async function start(shutdownGracePeriodMs: number): Promise<{ app: HttpsApp; port: number }> {
    const app = await createHttpsApp(
      SlowAppModule,
      {
        tls: { cert: pki.server.cert, key: pki.server.key },
        timeouts: { shutdownGracePeriodMs },
        nest: { logger: false },
      },
      adapter,
    );
    return { app, port: (await app.listen(0, '127.0.0.1')).port };
  }

  it('lets an in-flight request finish, closes idle keep-alive connections, then runs Nest shutdown hooks', async () => {
    const { app, port } = await start(5000);
    // An idle keep-alive connection: it must not hold the shutdown up.
    const idle = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem });
    await once(idle, 'secureConnect');
    idle.write('GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await once(idle, 'data');
    const idleClosed = once(idle, 'close');

    const inFlight = call(port, { ca: pki.ca.certPem, path: '/slow?ms=600' });
    while (!slowEvents.includes('start-600')) await new Promise((r) => setTimeout(r, 5));
    const closed = app.close();
    await idleClosed;
    expect(slowEvents).not.toContain('end-600');

    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ waited: 600 });
    expect(answer.headers.connection).toBe('close');
    await closed;
    expect(slowEvents).toEqual(['start-600', 'end-600', 'module-destroy']);
    await expect(call(port, { ca: pki.ca.certPem })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('cuts requests still running at the end of the grace period', async () => {
    const { app, port } = await start(200);
    const inFlight = call(port, { ca: pki.ca.certPem, path: '/slow?ms=3000' });
    while (!slowEvents.includes('start-3000')) await new Promise((r) => setTimeout(r, 5));
    await app.close();
    await expect(inFlight).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('is idempotent and works before listen', async () => {
    const app = await createHttpsApp(
      SlowAppModule,
      { tls: { cert: pki.server.cert, key: pki.server.key }, nest: { logger: false } },
      adapter,
    );
    await Promise.all([app.close(), app.close()]);
    await expect(app.listen(0)).rejects.toThrow(/closed/);
  });
});
