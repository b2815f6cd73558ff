/**
 * Benchmark: the same HTTPS route with and without the Shield identity guard, in one run.
 *
 *   npx vitest bench --run bench/identity/guard.bench.ts
 *
 * Two Nest apps in this process (Express, TLS 1.3, dev-PKI certificate, optional mTLS as in
 * production): one without IdentityModule, one with it and `@RequireScopes('models:infer')` on the
 * route. wrk (one thread, keep-alive connections) sends the same bearer token on every request, so
 * the guard runs its full per-request path (header parse, verified-token cache, policy match,
 * principal, one audit line through Nest's Logger) but the signature check only once. Rounds alternate A/B/A/B... and the
 * medians are compared. Target: guarded >= 95% of unguarded req/s. On a shared CPU req/s is noisy,
 * so the server's CPU time per request (process.cpuUsage over wrk's request count) is reported
 * too: its ratio is what the throughput ratio would be on an idle machine. Results go to stdout and to
 * bench/identity/guard-vitest-results.json. Superseded by guard-https.bench.mjs (one process per
 * app, pinned cores, per-process CPU), whose figures are the ones in README.md.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { openSync, writeFileSync, writeSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  ConsoleLogger,
  Controller,
  Get,
  Module,
  type INestApplication,
  type LogLevel,
  type NestApplicationOptions,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import { IdentityModule, RequireScopes } from '@inference-shield/identity';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { exportJWK } from 'jose';
import type { AddressInfo } from 'node:net';
import { bench, describe } from 'vitest';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const ISSUER = 'https://idp.bench.local';
const AUDIENCE = 'inference';
const BODY = { model: 'demo', outputs: [0.1, 0.7, 0.2] };

@Controller('v2/models/demo')
class OpenController {
  @Get('infer') infer() {
    return BODY;
  }
}

@Controller('v2/models/demo')
class GuardedController {
  @Get('infer') @RequireScopes('models:infer') infer() {
    return BODY;
  }
}

/**
 * Nest's ConsoleLogger, formatting as usual, but writing each line with one write(2) to /dev/null
 * (as process.stdout does for a file), since stdout inside a vitest worker is forwarded to the
 * main thread. The guarded app keeps the default audit sink (LoggerAuditSink -> Nest Logger), so
 * the cost of one formatted audit line per request is counted, not the I/O of a real log pipe.
 */
class DevNullConsoleLogger extends ConsoleLogger {
  private readonly fd = openSync('/dev/null', 'w');
  /** Lines written, so the results show the audit did run. */
  lines = 0;
  protected override printMessages(
    messages: unknown[],
    context = '',
    logLevel: LogLevel = 'log',
    _writeStreamType?: 'stdout' | 'stderr',
  ): void {
    for (const message of messages) {
      const line = this.formatMessage(
        logLevel,
        message,
        this.formatPid(process.pid),
        logLevel.toUpperCase().padStart(7, ' '),
        this.formatContext(context),
        '',
      );
      writeSync(this.fd, line);
      this.lines += 1;
    }
  }
}

interface Run {
  /** wrk's requests per second. */
  readonly rps: number;
  /** Server CPU time (user + system of this process) per request, in µs: robust to a shared CPU. */
  readonly cpuUsPerRequest: number;
}

function wrk(port: number, token: string): Promise<Run> {
  const cpu = process.cpuUsage();
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/wrk', [
      '-t1',
      `-c${CONNECTIONS}`,
      `-d${SECONDS}s`,
      '-H',
      `Authorization: Bearer ${token}`,
      `https://127.0.0.1:${port}/v2/models/demo/infer`,
    ]);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const used = process.cpuUsage(cpu);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const total = /(\d+) requests in/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      if (!rps?.[1] || !total?.[1]) return reject(new Error(`wrk output not understood:\n${out}`));
      if (non2xx)
        return reject(new Error(`wrk saw ${non2xx[1]} refused requests: the token was not accepted`));
      resolve({
        rps: Number(rps[1]),
        cpuUsPerRequest: Number(((used.user + used.system) / Number(total[1])).toFixed(1)),
      });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

describe('identity guard overhead', () => {
  bench(
    'HTTPS route with and without the guard (wrk)',
    async () => {
      const ca = await DevCertificateAuthority.create();
      const server = await ca.issueServer();
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' };
      const now = Math.floor(Date.now() / 1000);
      const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
      const input = `${b64(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'bench' }))}.${b64(
        JSON.stringify({
          iss: ISSUER,
          aud: AUDIENCE,
          sub: 'bench-client',
          iat: now,
          exp: now + 3600,
          scope: 'models:infer',
        }),
      )}`;
      const token = `${input}.${b64(cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`;

      const httpsOptions = {
        key: server.keyPem,
        cert: server.certPem,
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      } as NestApplicationOptions['httpsOptions'];

      @Module({ controllers: [OpenController] })
      class OpenModule {}
      @Module({
        imports: [
          IdentityModule.forRoot({
            oidc: {
              issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [jwk] }, algorithms: ['ES256'] }],
            },
          }),
        ],
        controllers: [GuardedController],
      })
      class GuardedModule {}
      // The same, with a plain JSON-lines audit sink (one write(2) per event, no Nest log formatting).
      const fd = openSync('/dev/null', 'w');
      @Module({
        imports: [
          IdentityModule.forRoot({
            oidc: {
              issuers: [{ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [jwk] }, algorithms: ['ES256'] }],
            },
            audit: { sink: { record: (e) => void writeSync(fd, `${JSON.stringify(e)}\n`) } },
          }),
        ],
        controllers: [GuardedController],
      })
      class GuardedJsonModule {}

      const apps: INestApplication[] = [];
      const logger = new DevNullConsoleLogger();
      const start = async (module: object) => {
        const app = await NestFactory.create(module, { httpsOptions, logger });
        await app.listen(0, '127.0.0.1');
        apps.push(app);
        return (app.getHttpServer().address() as AddressInfo).port;
      };
      try {
        const open = await start(OpenModule);
        const guarded = await start(GuardedModule);
        const guardedJson = await start(GuardedJsonModule);
        await wrk(open, token); // warm-up all three (JIT, TLS session setup)
        await wrk(guarded, token);
        await wrk(guardedJson, token);
        const a: Run[] = [];
        const b: Run[] = [];
        const c: Run[] = [];
        for (let i = 0; i < ROUNDS; i += 1) {
          a.push(await wrk(open, token));
          b.push(await wrk(guarded, token));
          c.push(await wrk(guardedJson, token));
        }
        const rps = (runs: Run[]) => median(runs.map((r) => r.rps));
        const cpu = (runs: Run[]) => median(runs.map((r) => r.cpuUsPerRequest));
        const result = {
          date: new Date().toISOString(),
          node: process.version,
          cpus: cpus().length,
          wrk: { threads: 1, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS },
          logLinesWritten: logger.lines,
          unguarded: a,
          guarded: b,
          guardedJsonAudit: c,
          unguardedMedianRps: rps(a),
          guardedMedianRps: rps(b),
          guardedJsonAuditMedianRps: rps(c),
          /** guarded / unguarded throughput, the 95% target (default audit sink: Nest Logger). */
          ratio: Number((rps(b) / rps(a)).toFixed(3)),
          ratioJsonAudit: Number((rps(c) / rps(a)).toFixed(3)),
          unguardedMedianCpuUsPerRequest: cpu(a),
          guardedMedianCpuUsPerRequest: cpu(b),
          guardedJsonAuditMedianCpuUsPerRequest: cpu(c),
          /** The same ratios from server CPU per request: what throughput would be on a CPU-bound, idle machine. */
          cpuRatio: Number((cpu(a) / cpu(b)).toFixed(3)),
          cpuRatioJsonAudit: Number((cpu(a) / cpu(c)).toFixed(3)),
        };
        console.log(JSON.stringify(result, null, 2));
        writeFileSync(
          new URL('./guard-vitest-results.json', import.meta.url),
          `${JSON.stringify(result, null, 2)}\n`,
        );
        if (result.ratio < 0.95 || result.cpuRatio < 0.95) {
          console.warn(
            `guarded/unguarded: ${result.ratio} by req/s, ${result.cpuRatio} by CPU per request (target 0.95)`,
          );
        }
      } finally {
        for (const app of apps) await app.close();
      }
    },
    { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 },
  );
});
