// One relay in its own process, for the two-process budget test (relay-processes.e2e.spec.ts):
// the built packages (`npm run build`; the spec runs scripts/ensure-built.mjs first), the real
// bootstrap, IdentityModule (mTLS workloads), UpstreamModule to the stand-in, LlmRelayModule with a
// RedisBudgetStore on its own ioredis connection. Configuration arrives in RELAY_PROCESS (JSON);
// the port goes back over IPC; 'stop' closes everything.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { Redis } from 'ioredis';
import { createHttpsApp } from '@inference-shield/https';
import { IdentityModule } from '@inference-shield/identity';
import { LlmRelayModule, RedisBudgetStore } from '@inference-shield/llm-relay';
import { UpstreamModule } from '@inference-shield/upstream';

const cfg = JSON.parse(process.env.RELAY_PROCESS ?? '{}');
const redis = new Redis(cfg.redisUrl, { maxRetriesPerRequest: 1 });
redis.on('error', () => undefined);
const events = [];

class RelayProcessModule {}
Module({
  imports: [
    IdentityModule.forRoot({
      mtls: { trustDomains: ['shield.local'] },
      audit: { sink: { record: (e) => events.push(e) } },
    }),
    UpstreamModule.forRoot({ upstreams: { llm: cfg.upstream } }),
    LlmRelayModule.forRoot({
      upstreams: { llm: {} },
      models: { chat: { upstream: 'llm', model: 'standin-chat' } },
      access: { '*': [{}] },
      budgets: {
        store: new RedisBudgetStore({ client: redis, keyPrefix: cfg.keyPrefix }),
        perPrincipal: cfg.limits,
      },
    }),
  ],
})(RelayProcessModule);

const app = await createHttpsApp(RelayProcessModule, {
  tls: { cert: cfg.tls.cert, key: cfg.tls.key },
  mtls: { mode: 'optional', ca: { file: cfg.tls.ca } },
  reload: { watch: false, sighup: false },
  nest: { logger: false },
});
const { port } = await app.listen(0, '127.0.0.1');
process.send?.({ port, pid: process.pid });
process.on('message', async (m) => {
  if (m === 'usage') {
    process.send?.({ usage: events.filter((e) => e.event === 'llm.usage').map((e) => e.outcome) });
  } else if (m === 'stop') {
    await app.close();
    redis.disconnect();
    process.exit(0);
  }
});
