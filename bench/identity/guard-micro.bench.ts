/**
 * Micro-benchmark: the Shield guard's own cost per request, without HTTP or TLS, by calling
 * `IdentityGuard.canActivate` of a real IdentityModule with a reused token.
 *
 *   npx vitest bench --run bench/identity/guard-micro.bench.ts
 */
import 'reflect-metadata';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Controller, Get, Module, type ExecutionContext, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IdentityModule, RequireScopes, type AuditEvent, type AuditSink } from '@inference-shield/identity';
// What this bench measures is the guard itself, called directly: an internal class, on purpose.
// eslint-disable-next-line no-restricted-imports -- the guard and verifier under measurement
import { IdentityGuard, TOKEN_VERIFIER, type TokenVerifier } from '@inference-shield/identity/internal';
import { exportJWK } from 'jose';
import { afterAll, beforeAll, bench, describe } from 'vitest';

const ISSUER = 'https://idp.bench.local';

@Controller('m')
class MicroController {
  @Get() @RequireScopes('models:infer') infer() {
    return 1;
  }
}

const devNull = createWriteStream('/dev/null');
const sinks: Record<string, AuditSink> = {
  noop: { record: () => undefined },
  stringify: { record: (e: AuditEvent) => void JSON.stringify(e) },
  devnull: { record: (e: AuditEvent) => void devNull.write(`${JSON.stringify(e)}\n`) },
};

let token = '';
const guards: Record<string, IdentityGuard> = {};
const apps: INestApplicationContext[] = [];

beforeAll(async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'm', alg: 'ES256' };
  const now = Math.floor(Date.now() / 1000);
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
  const input = `${b64(JSON.stringify({ alg: 'ES256', kid: 'm' }))}.${b64(
    JSON.stringify({ iss: ISSUER, aud: 'x', sub: 's', iat: now, exp: now + 3600, scope: 'models:infer' }),
  )}`;
  token = `${input}.${b64(cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`;
  for (const [name, sink] of Object.entries(sinks)) {
    @Module({
      imports: [
        IdentityModule.forRoot({
          oidc: {
            issuers: [{ issuer: ISSUER, audience: 'x', jwks: { keys: [jwk] }, algorithms: ['ES256'] }],
          },
          audit: { sink },
        }),
      ],
      controllers: [MicroController],
    })
    class M {}
    const app = await NestFactory.createApplicationContext(M, { logger: false });
    apps.push(app);
    guards[name] = app.get(IdentityGuard);
    // The connection's first request takes the full path and fills the memo.
    await guards[name].canActivate(context(connection));
  }
});

afterAll(async () => {
  connection.destroy();
  for (const app of apps) await app.close();
});

// A TLS socket object (never connected) standing for one keep-alive connection: with it, the
// guard's per-connection memo answers a repeated Authorization header.
const connection = new TLSSocket(new Socket());

function context(socket?: TLSSocket): ExecutionContext {
  const request = { headers: { authorization: `Bearer ${token}` }, ...(socket ? { socket } : {}) };
  return {
    getType: () => 'http',
    getClass: () => MicroController,
    getHandler: () => MicroController.prototype.infer,
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
}

describe('IdentityGuard.canActivate, reused token', () => {
  bench('TokenVerifier.verify alone (cache hit)', async () => {
    const app = apps[0];
    if (!app) throw new Error('not started');
    await app.get<TokenVerifier>(TOKEN_VERIFIER).verify(token);
  });
  for (const name of Object.keys(sinks)) {
    bench(`audit sink: ${name}`, async () => {
      const guard = guards[name];
      if (!guard) throw new Error('not started');
      await guard.canActivate(context());
    });
    bench(`audit sink: ${name}, same connection (memo)`, () => {
      const guard = guards[name];
      if (!guard) throw new Error('not started');
      // Synchronous `true` on a memo hit: no promise to await.
      if (guard.canActivate(context(connection)) !== true) throw new Error('the memo did not answer');
    });
  }
});
