/**
 * What the identity attack specs share: an ES256 issuer key that signs honest tokens, the serving
 * options of a Shield server with optional mTLS (for the harness's `startApp`), and
 * a raw HTTP/1.1-over-TLS client that writes header lines byte for byte and can keep one
 * connection for several requests. Only public entries (`@inference-shield/*`) are imported.
 */
import 'reflect-metadata';
import { connect, type TLSSocket } from 'node:tls';
import type { IssuedCertificate, TestPki } from '@inference-shield/dev-pki';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import type { StartOptions } from '../../support/harness.js';

export const ISSUER = 'https://idp.attack.test';
export const AUDIENCE = 'inference';

/** An ES256 key of the issuer: its public JWK (for `jwks`) and a signer of honest tokens. */
export interface IssuerKey {
  readonly kid: string;
  readonly jwk: JWK;
  /** A valid access token for ISSUER/AUDIENCE, `sub` alice, scope `models:infer`, plus `claims`. */
  sign(claims?: JWTPayload): Promise<string>;
}

export async function issuerKey(kid: string): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return {
    kid,
    jwk,
    sign: (claims = {}) =>
      new SignJWT({ sub: 'alice', scope: 'models:infer', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey),
  };
}

/**
 * Optional mTLS, the way an app mixing token and workload callers serves: a client certificate is
 * asked for and verified against the test CA, a connection without one still reaches the guard.
 * TLS 1.3 only. For the harness's `startApp(module, serveOptionalMtls(pki))`.
 */
export function serveOptionalMtls(pki: TestPki): StartOptions {
  return { pki, mtls: 'optional', tls: { minVersion: 'TLSv1.3' } };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

const TIMEOUT_MS = 15_000;

/**
 * One TLS connection to the app, kept open across requests (HTTP/1.1 keep-alive). Requests are
 * written as raw header lines, so a test can send what a well-behaved client library would not
 * (two `Authorization` headers, for one).
 */
export class RawConnection {
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    const fail = (err: Error): void => {
      this.failure = err;
      this.waiter?.();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static open(port: number, pki: TestPki, client?: IssuedCertificate): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: pki.ca.certPem,
        ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
      });
      socket.once('secureConnect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends `GET|POST path` with these header lines (`Name: value`), reads one response. */
  async request(method: string, path: string, headerLines: readonly string[]): Promise<RawResponse> {
    const head = [`${method} ${path} HTTP/1.1`, 'Host: localhost', 'Content-Length: 0', ...headerLines];
    this.socket.write(`${head.join('\r\n')}\r\n\r\n`);
    return this.readResponse();
  }

  close(): void {
    this.socket.destroy();
  }

  private async readResponse(): Promise<RawResponse> {
    const deadline = setTimeout(() => {
      this.failure = new Error(`no complete response within ${TIMEOUT_MS} ms`);
      this.waiter?.();
    }, TIMEOUT_MS);
    try {
      for (;;) {
        const parsed = this.tryParse();
        if (parsed) return parsed;
        if (this.failure) throw this.failure;
        await new Promise<void>((resolve) => (this.waiter = resolve));
        this.waiter = undefined;
      }
    } finally {
      clearTimeout(deadline);
    }
  }

  private tryParse(): RawResponse | undefined {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 'NaN');
    if (!Number.isInteger(length)) throw new Error('the test client reads Content-Length bodies only');
    if (this.buffer.length < end + 4 + length) return undefined;
    const text = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8');
    this.buffer = this.buffer.subarray(end + 4 + length);
    let body: Record<string, unknown> = {};
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null) body = value as Record<string, unknown>;
    } catch {
      // not JSON: `text` keeps it
    }
    return { status, headers, text, body };
  }
}

/** One request on a fresh connection (its own handshake, so the client certificate is exactly this one). */
export async function callOnce(
  port: number,
  pki: TestPki,
  path: string,
  opts: { method?: string; headers?: readonly string[]; client?: IssuedCertificate } = {},
): Promise<RawResponse> {
  const conn = await RawConnection.open(port, pki, opts.client);
  try {
    return await conn.request(opts.method ?? 'GET', path, opts.headers ?? []);
  } finally {
    conn.close();
  }
}
