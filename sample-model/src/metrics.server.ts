import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** Where the sample serves its metrics: off unless SHIELD_METRICS_PORT is set. */
export interface MetricsListenerConfig {
  readonly port: number;
  readonly host: string;
  readonly cert: string;
  readonly key: string;
  /** Only clients with a certificate of this CA may scrape. */
  readonly ca: string;
}

/**
 * SHIELD_METRICS_PORT (1 to 65535; unset or empty: no metrics at all, no SDK registered) and
 * SHIELD_METRICS_HOST (default: the model server's host). A malformed port stops the start.
 */
export function metricsListenerConfig(
  env: NodeJS.ProcessEnv,
  server: { host: string; tls: { cert: string; key: string }; mtlsCa: string },
): MetricsListenerConfig | undefined {
  const raw = env.SHIELD_METRICS_PORT;
  if (raw === undefined || raw === '') return undefined;
  const port = Number(raw);
  if (!/^\d{1,5}$/.test(raw) || port < 1 || port > 65535) {
    throw new TypeError('SHIELD_METRICS_PORT must be a port number (1 to 65535)');
  }
  const host = env.SHIELD_METRICS_HOST;
  return {
    port,
    host: host === undefined || host === '' ? server.host : host,
    cert: server.tls.cert,
    key: server.tls.key,
    ca: server.mtlsCa,
  };
}

/** The metrics listener: close it on shutdown. */
export interface MetricsListener {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Registers the OpenTelemetry metrics SDK with a Prometheus exporter (call before the app is
 * created: the API's meters have no proxy), and serves `GET /metrics` on a listener of its own
 * that requires a client certificate of the sample's CA (mTLS only: no certificate, no
 * handshake). Nothing else is served there; the model server's port is not involved.
 */
export async function startMetricsListener(config: MetricsListenerConfig): Promise<MetricsListener> {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  const server: Server = createServer(
    {
      cert: readFileSync(config.cert),
      key: readFileSync(config.key),
      ca: readFileSync(config.ca),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      handshakeTimeout: 10_000,
      requestTimeout: 10_000,
      headersTimeout: 10_000,
    },
    (req, res) => {
      if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?') === true)) {
        exporter.getMetricsRequestHandler(req, res);
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    },
  );
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shown = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    url: `https://${shown === '127.0.0.1' || shown === '0.0.0.0' ? 'localhost' : shown}:${port}/metrics`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await provider.shutdown();
    },
  };
}
