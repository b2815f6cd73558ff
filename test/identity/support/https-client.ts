/**
 * A raw HTTPS client for the fixture apps: one request per fresh connection (each call has its own
 * handshake, so the client certificate is exactly the one given), the server verified against the
 * test CA. A generous timeout only turns a hang into a failure; nothing is asserted about time.
 */
import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

/** A client certificate presented in the TLS handshake. */
export interface ClientCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CallOptions {
  /** The CA the server certificate must chain to. */
  readonly ca: string;
  readonly method?: string;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** A raw `Authorization` header value (wins over `token`). */
  readonly authorization?: string;
  readonly client?: ClientCertificate;
  readonly headers?: Record<string, string>;
  /** A JSON body. */
  readonly json?: unknown;
}

export interface CallResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The parsed JSON body (`{}` when the body is not JSON). */
  readonly body: Record<string, unknown>;
}

const TIMEOUT_MS = 20_000;

/** One HTTPS request to `127.0.0.1:port` (SNI `localhost`) on a fresh TLS connection. */
export function call(port: number, path: string, opts: CallOptions): Promise<CallResult> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.authorization !== undefined) headers['authorization'] = opts.authorization;
  let payload: string | undefined;
  if (opts.json !== undefined) {
    payload = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        servername: 'localhost',
        ca: opts.ca,
        ...(opts.client ? { cert: opts.client.certPem, key: opts.client.keyPem } : {}),
        headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown> = {};
          try {
            const parsed: unknown = JSON.parse(text);
            if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
          } catch {
            // Not JSON: `text` keeps what came.
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.setTimeout(TIMEOUT_MS, () =>
      req.destroy(new Error(`no answer from ${path} within ${TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}
