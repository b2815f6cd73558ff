/**
 * The sample model server as a process: `node dist/sample-model/src/main.js` (started by
 * `npm start`). HTTPS only, inbound mTLS optional (workloads may present a certificate), every
 * route behind the identity guard. Configuration: environment variables, see docs/configuration.md.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createHttpsApp } from '@inference-shield/https';
import { AppModule } from './app/app.module.js';
import { loadSampleConfig } from './app/sample-config.js';
import { metricsListenerConfig, startMetricsListener } from './metrics.server.js';

async function main(): Promise<void> {
  const config = loadSampleConfig();
  // SHIELD_METRICS_PORT: OpenTelemetry metrics in Prometheus format, mTLS only, registered before
  // the app is created (instruments made while no SDK is registered stay no-ops).
  const metricsConfig = metricsListenerConfig(process.env, config);
  const metricsListener = metricsConfig ? await startMetricsListener(metricsConfig) : undefined;
  const app = await createHttpsApp(AppModule.forConfig(config), {
    tls: config.tls,
    mtls: {
      mode: 'optional',
      ca: { file: config.mtlsCa },
      ...(config.mtlsCrl ? { crl: config.mtlsCrl } : {}),
    },
    // 1024 rows of 8 features in JSON stay well under this.
    limits: { maxBodyBytes: 512 * 1024 },
    // SIGTERM: readiness 503 at once, serving this long more, then the listener closes.
    timeouts: { drainDelayMs: config.drainDelayMs },
    nest: { logger: ['error', 'warn', 'log'] },
  });
  const { url } = await app.listen(config.port, config.host);
  new Logger('SampleModel').log(`sample model server on ${url}`);
  if (metricsListener) new Logger('SampleModel').log(`metrics (mTLS only) on ${metricsListener.url}`);
  const stop = (): void => {
    void app
      .close()
      .then(() => metricsListener?.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`sample model server did not start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
