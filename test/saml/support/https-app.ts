/**
 * A real HTTPS Nest application on loopback (port 0, dev PKI server certificate) and a raw HTTPS
 * client for the SAML end-to-end specs.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { INestApplication, LoggerService, NestApplicationOptions, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';

export interface ServerPki {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export async function createServerPki(): Promise<ServerPki> {
  const ca = await DevCertificateAuthority.create();
  const server = await ca.issueServer();
  return { caPem: ca.certPem, certPem: server.certPem, keyPem: server.keyPem };
}

/** Collects every line Nest's Logger is given, at any level. */
export class CaptureLogger implements LoggerService {
  readonly lines: string[] = [];
  private push(level: string, args: unknown[]): void {
    this.lines.push(
      `${level} ${args.map((a) => (typeof a === 'string' ? a : (JSON.stringify(a) ?? String(a)))).join(' ')}`,
    );
  }
  log(...args: unknown[]): void {
    this.push('log', args);
  }
  error(...args: unknown[]): void {
    this.push('error', args);
  }
  warn(...args: unknown[]): void {
    this.push('warn', args);
  }
  debug(...args: unknown[]): void {
    this.push('debug', args);
  }
  verbose(...args: unknown[]): void {
    this.push('verbose', args);
  }
  fatal(...args: unknown[]): void {
    this.push('fatal', args);
  }
}

export interface RunningApp {
  readonly app: INestApplication;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts `module` on 127.0.0.1:0 over TLS 1.3 with the dev PKI server certificate (Express or Fastify). */
export async function startHttpsApp(
  module: Type,
  pki: ServerPki,
  logger: LoggerService | false = false,
  adapter: 'express' | 'fastify' = 'express',
  nest: { readonly bodyParser?: boolean } = {},
): Promise<RunningApp> {
  const httpsOptions = { key: pki.keyPem, cert: pki.certPem, minVersion: 'TLSv1.3' as const };
  const app: INestApplication =
    adapter === 'fastify'
      ? await NestFactory.create<NestFastifyApplication>(
          module,
          new FastifyAdapter({ https: httpsOptions }),
          { logger, ...nest },
        )
      : // Nest's HttpsOptions type predates minVersion; the options go to https.createServer as they are.
        await NestFactory.create(module, {
          httpsOptions: httpsOptions as NestApplicationOptions['httpsOptions'],
          logger,
          ...nest,
        });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  return { app, port, close: () => app.close() };
}

export interface CallResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

export interface CallOptions {
  readonly method?: string;
  readonly token?: string;
  /** A form body (application/x-www-form-urlencoded); a string value array repeats the field. */
  readonly form?: Record<string, string | string[]>;
  /** A raw body with its content type. */
  readonly raw?: { readonly contentType: string; readonly body: string };
}

/** One HTTPS request on a fresh connection, verified against the dev CA. */
export function call(
  port: number,
  pki: ServerPki,
  path: string,
  opts: CallOptions = {},
): Promise<CallResult> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (opts.form !== undefined) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.form))
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
    body = params.toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (opts.raw !== undefined) {
    body = opts.raw.body;
    headers['content-type'] = opts.raw.contentType;
  }
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
        servername: 'localhost',
        ca: pki.caPem,
        headers,
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
