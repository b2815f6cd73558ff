/**
 * Test fixtures shared by the identity end-to-end specs: a dev PKI, an ES256 token signer that can
 * also craft hostile tokens byte by byte, a real HTTPS Nest app on loopback (Express or Fastify),
 * and a raw HTTPS client. Not exported from the library entry.
 */
import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { request, type ServerOptions } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { INestApplication, LoggerService, NestApplicationOptions, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DevCertificateAuthority, type IssuedCertificate } from '@inference-shield/dev-pki';
import { exportJWK, type JWK } from 'jose';
import type { ShieldPrincipal } from './principal.interface.js';
import type { TokenVerifierOptions } from './tokens/index.js';

export const ISSUER = 'https://idp.shield.local';
export const AUDIENCE = 'inference';
export const GW_ID = 'spiffe://shield.local/ns/prod/gw';
export const OTHER_ID = 'spiffe://shield.local/ns/prod/other';
export const PARTNER_ID = 'spiffe://partners.example/ns/x';

/** A verified OIDC caller, for unit specs of what consumes principals (audit, principal store). */
export const ALICE: ShieldPrincipal = Object.freeze({
  method: 'oidc',
  subject: 'alice',
  issuer: 'https://idp.example',
  scopes: Object.freeze(['models:infer']),
  claims: Object.freeze({}),
});

export interface Pki {
  readonly caPem: string;
  readonly server: IssuedCertificate;
  /** spiffe://shield.local/ns/prod/gw */
  readonly gw: IssuedCertificate;
  /** spiffe://shield.local/ns/prod/other */
  readonly other: IssuedCertificate;
  /** spiffe://partners.example/ns/x (same CA, another trust domain) */
  readonly partner: IssuedCertificate;
  /** No SPIFFE ID; CN "worker", DNS SAN worker.internal */
  readonly plain: IssuedCertificate;
  /** spiffe://shield.local/ns/prod/gw, but issued by a CA the server does not trust */
  readonly foreign: IssuedCertificate;
}

export async function createPki(): Promise<Pki> {
  const ca = await DevCertificateAuthority.create();
  const rogue = await DevCertificateAuthority.create({ commonName: 'Rogue CA' });
  return {
    caPem: ca.certPem,
    server: await ca.issueServer(),
    gw: await ca.issueClient({ spiffeId: GW_ID }),
    other: await ca.issueClient({ spiffeId: OTHER_ID }),
    partner: await ca.issueClient({ spiffeId: PARTNER_ID }),
    plain: await ca.issueClient({ commonName: 'worker', dnsNames: ['worker.internal'] }),
    foreign: await rogue.issueClient({ spiffeId: GW_ID }),
  };
}

const b64url = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

/** An ES256 issuer key pair, a signer for good tokens, and a crafter for hostile ones. */
export interface Signer {
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly publicKey: KeyObject;
  /** A valid access token; pass a claim as `undefined` to remove it. */
  sign(claims?: Record<string, unknown>, header?: Record<string, unknown>): string;
  /** Signs exactly these header and payload JSON texts (duplicate members stay duplicated). */
  craft(headerJson: string, payloadJson: string): string;
}

export async function createSigner(kid = 'k1'): Promise<Signer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const craft = (headerJson: string, payloadJson: string): string => {
    const input = `${b64url(headerJson)}.${b64url(payloadJson)}`;
    const sig = cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  };
  return {
    kid,
    publicJwk,
    publicKey,
    craft,
    sign(claims = {}, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: ISSUER,
        aud: AUDIENCE,
        sub: 'alice',
        iat: now,
        exp: now + 300,
        jti: `jti-${Math.random().toString(36).slice(2)}`,
        scope: 'models:infer',
        ...claims,
      };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      const h: Record<string, unknown> = { alg: 'ES256', typ: 'at+jwt', kid, ...header };
      for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
      return craft(JSON.stringify(h), JSON.stringify(payload));
    },
  };
}

/** Token verifier options trusting the signer's key inline (no network). */
export function oidcOptions(signer: Signer, extra: Partial<TokenVerifierOptions> = {}): TokenVerifierOptions {
  return {
    issuers: [
      { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [signer.publicJwk] }, algorithms: ['ES256'] },
    ],
    ...extra,
  };
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

/**
 * The HTTPS options a Shield server would use for optional mTLS: client certificates are asked
 * for and verified against the dev CA, but a connection without one is let through to the guard
 * (so routes can mix token and mTLS callers). TLS 1.3 only.
 */
export function httpsOptionsFor(pki: Pki): ServerOptions {
  return {
    key: pki.server.keyPem,
    cert: pki.server.certPem,
    ca: pki.caPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  };
}

/** Starts `module` on 127.0.0.1, port 0, over real TLS. */
export async function startHttpsApp(
  module: Type,
  pki: Pki,
  opts: { adapter?: 'express' | 'fastify'; logger?: LoggerService | false } = {},
): Promise<RunningApp> {
  const httpsOptions = httpsOptionsFor(pki);
  const logger = opts.logger ?? false;
  const app: INestApplication =
    opts.adapter === 'fastify'
      ? await NestFactory.create<NestFastifyApplication>(
          module,
          new FastifyAdapter({ https: httpsOptions }),
          { logger },
        )
      : // Nest's HttpsOptions type predates minVersion; the options go to https.createServer as they are.
        await NestFactory.create(module, {
          httpsOptions: httpsOptions as NestApplicationOptions['httpsOptions'],
          logger,
        });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  return { app, port, close: () => app.close() };
}

export interface CallOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** A raw `Authorization` header value. */
  readonly authorization?: string;
  /** A client certificate presented in the TLS handshake. */
  readonly client?: IssuedCertificate;
  readonly headers?: Record<string, string>;
  readonly method?: string;
}

export interface CallResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

/** One HTTPS request on a fresh connection (so each call has its own handshake and certificate). */
export function call(port: number, pki: Pki, path: string, opts: CallOptions = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.authorization !== undefined) headers['authorization'] = opts.authorization;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        servername: 'localhost',
        ca: pki.caPem,
        ...(opts.client ? { cert: opts.client.certPem, key: opts.client.keyPem } : {}),
        headers,
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON: leave body empty, keep text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}
