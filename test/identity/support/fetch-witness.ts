/**
 * An HTTPS listener that only counts: the target a hostile `jku` / `x5u` header points at. The
 * server under test must never open a connection to it.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface FetchWitness {
  /** `https://localhost:<port>`. */
  readonly origin: string;
  /** TCP connections accepted so far (counted before any TLS, so a refused handshake counts too). */
  connections(): number;
  close(): Promise<void>;
}

/** Starts the witness on loopback, port 0, with a certificate the server under test would trust. */
export async function startFetchWitness(tls: { certPem: string; keyPem: string }): Promise<FetchWitness> {
  let count = 0;
  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"keys":[]}');
  });
  server.on('connection', () => {
    count++;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://localhost:${port}`,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
