import type { Server as TlsServer } from 'node:tls';
import {
  metrics,
  type Attributes,
  type Counter,
  type Meter,
  type ObservableCallback,
} from '@opentelemetry/api';
import {
  certificateExpiries,
  observeCertificateExpiry,
  type LoadedTlsBundle,
} from '@inference-shield/core/internal';

/**
 * OpenTelemetry instruments of one HTTPS server, through `@opentelemetry/api` only (a no-op unless
 * the application registered an SDK before the app was created). Everything here is per
 * connection (handshakes, refusals) or read at collection time (open connections): nothing is
 * added to the request path. See docs/telemetry.md.
 */
const SCOPE = '@inference-shield/https';

/** Connection limits a refusal can be counted under. */
export type ConnectionLimit = 'maxConnections' | 'maxConnectionsPerAddress';

const OK: Attributes = Object.freeze({ 'shield.tls.outcome': 'ok', 'shield.tls.reason': 'none' });
// An error code is a Node or OpenSSL constant (a bounded set); anything else is not recorded as is.
const CODE = /^[A-Z][A-Z0-9_]{0,79}$/;

/** The handshake, refusal and open-connection instruments of one server. */
export class HttpsTelemetry {
  private readonly handshakes: Counter;
  private readonly refusals: Counter;
  private readonly byLimit = new Map<ConnectionLimit, Attributes>();
  private readonly byReason = new Map<string, Attributes>();

  constructor(server: TlsServer, open: () => number, meter: Meter = metrics.getMeter(SCOPE)) {
    this.handshakes = meter.createCounter('shield.tls.handshakes', {
      description: 'Inbound TLS handshakes, by outcome (ok, failure) and failure reason (error code).',
      unit: '{handshake}',
    });
    this.refusals = meter.createCounter('shield.connections.refused', {
      description: 'Connections refused at a connection limit, by limit.',
      unit: '{connection}',
    });
    const gauge = meter.createObservableUpDownCounter('shield.connections.open', {
      description: 'Inbound connections open (accepted, not yet closed).',
      unit: '{connection}',
    });
    // By listening port: one process may serve several apps (an attribute set holds one value).
    let attributes: Attributes | undefined;
    const observe: ObservableCallback = (result) => {
      if (attributes === undefined) {
        const address = server.address();
        if (address === null || typeof address === 'string') return;
        attributes = Object.freeze({ 'server.port': address.port });
      }
      result.observe(open(), attributes);
    };
    gauge.addCallback(observe);
    server.once('close', () => gauge.removeCallback(observe));
    server.on('secureConnection', () => this.handshakes.add(1, OK));
    server.on('tlsClientError', (err: NodeJS.ErrnoException) => this.handshakes.add(1, this.failure(err)));
  }

  /** Counts one connection refused at `limit`. */
  refused(limit: ConnectionLimit): void {
    let attributes = this.byLimit.get(limit);
    if (attributes === undefined) {
      attributes = Object.freeze({ 'shield.connection.limit': limit });
      this.byLimit.set(limit, attributes);
    }
    this.refusals.add(1, attributes);
  }

  private failure(err: NodeJS.ErrnoException): Attributes {
    const code = typeof err.code === 'string' && CODE.test(err.code) ? err.code : 'other';
    let attributes = this.byReason.get(code);
    if (attributes === undefined) {
      attributes = Object.freeze({ 'shield.tls.outcome': 'failure', 'shield.tls.reason': code });
      this.byReason.set(code, attributes);
    }
    return attributes;
  }
}

/**
 * Observes the expiry of the server certificate, the client CAs and the CRLs `current()` returns
 * (the bundle in use: a reload is seen at the next collection), until the server closes.
 */
export function observeServerCertificates(
  server: TlsServer,
  current: () => LoadedTlsBundle,
  staticCa: Buffer | undefined,
): void {
  const stop = observeCertificateExpiry(() => {
    const bundle = current();
    return certificateExpiries([
      { role: 'server', file: bundle.files.cert, pem: bundle.cert },
      { role: 'client_ca', file: bundle.files.ca ?? 'mtls.ca.pem', pem: bundle.ca ?? staticCa },
      { role: 'crl', file: bundle.files.crl ?? 'mtls.crl', pem: bundle.crls },
    ]);
  });
  server.once('close', stop);
}
