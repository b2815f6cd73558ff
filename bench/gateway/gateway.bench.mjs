// The gateway comparison of issue #18 (target 1): the sample's in-process security against the same
// checks in a gateway in front of it, in one run. Builds nothing: run `npm run build` first.
//
//   npm run build && node bench/gateway/gateway.bench.mjs     # writes bench/gateway/README.md
//
// Designs, each loaded by wrk (keep-alive, TLS 1.3) with POST /v2/models/fraud-lr/infer:
//   in-process   the sample exactly as `npm start` runs it (createHttpsApp(AppModule.forConfig(config)),
//                identity guard on the dev IdP's ES256 access tokens, audit line per request);
//   gw-http      HAProxy 2.6 terminating TLS 1.3 with the same server certificate, checking the token
//                with `jwt_verify` and ACLs (alg, typ, iss, aud, exp, nbf, iat, scope), then plain HTTP
//                to the sample's SampleModelModule with the guard off (no IdentityModule);
//   gw-mtls      the same HAProxy front, then HTTPS with a client certificate (`verify required`) to
//                the same guard-off module served by createHttpsApp with mTLS required;
//   plain        (baseline) wrk straight to the guard-off module over plain HTTP, no token.
// Two token modes: `reused` (one token for the whole run, as a real client does) and `fresh` (a
// different token on every request, cycling through a pool larger than the guard's verified-token
// cache, so every request is a cache miss in the sample).
//
// Cores: the in-process server gets one core; HAProxy and its backend share that same core (both
// pinned to it with taskset); wrk runs on the other. Servers are loaded one at a time. CPU per
// request: the Node servers' process.cpuUsage() over IPC, HAProxy's utime + stime from
// /proc/<pid>/stat, around each wrk run, divided by the requests. Rounds interleave the runs (order
// reversed every other round); medians are reported, with the load average after each round.
//
// Before measuring, the script checks that the three designs give the same answer to valid requests
// (the dev IdP's own token and the bench's minted ones), and sends a list of attack tokens to each,
// printing which design refused which. Tokens for the runs are signed here with the dev IdP's own
// signing key (read from its keys file): the same header and claims as the IdP's `client_credentials`
// tokens with a new `jti` each, because the IdP mints about 10 per second and a run needs thousands.
//
// Environment: BENCH_SECONDS (3), BENCH_ROUNDS (3), BENCH_CONNECTIONS (32), BENCH_TOKEN_POOL (12000,
// fresh tokens per fresh run; more than the cache's 10000 entries), BENCH_SERVER_CPU, BENCH_WRK_CPU
// (default: the idlest core for the servers), BENCH_DIST (dist), BENCH_PROFILE (a folder: each Node
// server writes a V8 CPU profile there when it stops), BENCH_OUT (README path; "-" prints only),
// BENCH_ONLY (comma-separated run ids), HAPROXY (path, default `haproxy`).
import 'reflect-metadata';
import { execFileSync, spawn } from 'node:child_process';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  createHmac,
  randomBytes,
  sign,
} from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ask,
  coresByIdle,
  cpuIndex,
  cpuMicros,
  formatted,
  median,
  onParentMessages,
  pin,
  positiveInt,
  procCpuMicros,
  runWrk,
  startChild,
  stopChild,
  table,
} from '../support/bench-kit.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const dist = resolve(root, process.env.BENCH_DIST ?? 'dist');
const fromDist = (path) => import(pathToFileURL(join(dist, path)).href);
const lib = (name) => import(`@inference-shield/${name}`);

const INFER_PATH = '/v2/models/fraud-lr/infer';
const INFER_BODY = {
  inputs: [{ name: 'features', shape: [1, 8], datatype: 'FP32', data: [180, 21, 90, 0.4, 40, 4, 0, 0] }],
};
const SCOPE = 'models:infer llm:chat';
const KEEP_RUNS = 10;
/** The guard's verified-token cache holds 10,000 entries by default (libs/identity). */
const CACHE_ENTRIES = 10_000;

const DESIGNS = ['in-process', 'gw-http', 'gw-mtls'];
const RUNS = [
  ...DESIGNS.map((design) => ({ id: `${design}/reused`, design, mode: 'reused' })),
  ...DESIGNS.map((design) => ({ id: `${design}/fresh`, design, mode: 'fresh' })),
  { id: 'plain', design: 'plain', mode: 'none' },
];
const LABELS = {
  'in-process': 'in-process (the sample as shipped)',
  'gw-http': 'HAProxy → HTTP → sample, guard off',
  'gw-mtls': 'HAProxy → mTLS → sample, guard off',
  plain: 'plain HTTP, no security (baseline)',
};

// ---------------------------------------------------------------------------------------------
// Children.

/** The sample server as sample-model/src/main.ts starts it, on port 0. */
async function serveSecured(setup) {
  const { createHttpsApp } = await lib('https');
  const { AppModule } = await fromDist('sample-model/src/app/app.module.js');
  const { loadSampleConfig } = await fromDist('sample-model/src/app/sample-config.js');
  const config = loadSampleConfig(setup.env);
  const app = await createHttpsApp(AppModule.forConfig(config), {
    tls: config.tls,
    mtls: {
      mode: 'optional',
      ca: { file: config.mtlsCa },
      ...(config.mtlsCrl ? { crl: config.mtlsCrl } : {}),
    },
    limits: { maxBodyBytes: 512 * 1024 },
    nest: { logger: ['error', 'warn', 'log'] },
  });
  const { port } = await app.listen(0, '127.0.0.1');
  onParentMessages({
    cpu: () => process.send({ cpu: process.cpuUsage() }),
    close: async () => {
      await app.close();
      process.exit(0);
    },
  });
  process.send({ ready: { port } });
}

/**
 * The sample's inference module without IdentityModule (the guard off: the routes' policy
 * decorators are inert metadata), as bench/sample's plain server: over plain HTTP, or over HTTPS
 * with a client certificate required (createHttpsApp, the sample's TLS layer) for HAProxy's mTLS.
 */
async function serveBackend(setup, tls) {
  const { Module } = await import('@nestjs/common');
  const { HttpAdapterHost, NestFactory } = await import('@nestjs/core');
  const { ShieldExceptionFilter } = await lib('core');
  const { SampleModelModule } = await fromDist('sample-model/src/index.js');
  class BackendModule {}
  Reflect.decorate([Module({ imports: [SampleModelModule.forRoot({})] })], BackendModule);
  let app;
  let port;
  if (tls) {
    const { createHttpsApp } = await lib('https');
    app = await createHttpsApp(BackendModule, {
      tls: { cert: setup.serverCert, key: setup.serverKey },
      mtls: { mode: 'required', ca: { file: setup.caCert } },
      limits: { maxBodyBytes: 512 * 1024 },
      nest: { logger: ['error', 'warn', 'log'] },
    });
    ({ port } = await app.listen(0, '127.0.0.1'));
  } else {
    app = await NestFactory.create(BackendModule, { logger: ['error', 'warn', 'log'] });
    app.useGlobalFilters(new ShieldExceptionFilter(app.get(HttpAdapterHost)));
    await app.listen(0, '127.0.0.1');
    ({ port } = app.getHttpServer().address());
  }
  onParentMessages({
    cpu: () => process.send({ cpu: process.cpuUsage() }),
    close: async () => {
      await app.close();
      process.exit(0);
    },
  });
  process.send({ ready: { port } });
}

async function serve(kind) {
  const setup = await new Promise((ok) => process.once('message', ok));
  if (kind === 'in-process') await serveSecured(setup);
  else if (kind === 'backend-http') await serveBackend(setup, false);
  else if (kind === 'backend-mtls') await serveBackend(setup, true);
  else throw new Error(`unknown server kind ${kind}`);
}

// ---------------------------------------------------------------------------------------------
// Tokens, signed with the dev IdP's own key.

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function tokenMinter(idp, keysFile) {
  const jwk = JSON.parse(readFileSync(keysFile, 'utf8')).keys.find((k) => k.kid === idp.signingKid);
  if (!jwk?.d) throw new Error('the dev IdP keys file has no private key for its signing kid');
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const publicPem = createPublicKey(key).export({ type: 'spki', format: 'pem' });
  const header = { alg: 'ES256', typ: 'at+jwt', kid: idp.signingKid };
  const claims = (over = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return {
      jti: randomBytes(32).toString('base64url'),
      sub: 'demo-service',
      iat: now,
      exp: now + 300,
      scope: SCOPE,
      client_id: 'demo-service',
      iss: idp.issuer,
      aud: idp.audience,
      ...over,
    };
  };
  /** A compact JWS; `payload` may be a raw JSON string (for duplicated members). */
  const mint = ({ header: h = header, payload = claims(), signWith = key } = {}) => {
    const input = `${b64(h)}.${b64(payload)}`;
    const sig = sign('sha256', Buffer.from(input), { key: signWith, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  };
  return { mint, claims, header, publicPem };
}

/** The attack tokens: each valid but for one thing (signed with the IdP's key unless stated). */
function attacks({ mint, claims, header, publicPem }) {
  const now = Math.floor(Date.now() / 1000);
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const valid = mint();
  const [h, p] = valid.split('.');
  const hs256Input = `${b64({ ...header, alg: 'HS256' })}.${p}`;
  const dupScope = JSON.stringify(claims({ scope: 'models:infer' })).replace(
    '"scope":"models:infer"',
    '"scope":"models:infer","scope":"admin"',
  );
  return [
    { id: 'no token', token: undefined },
    { id: 'not a JWT', token: 'not-a-jwt' },
    { id: 'alg none, no signature', token: `${b64({ ...header, alg: 'none' })}.${p}.` },
    { id: 'signature altered', token: `${h}.${p}.${valid.split('.')[2].slice(0, -4)}AAAA` },
    { id: 'signed by another key (same kid)', token: mint({ signWith: other }) },
    {
      id: 'HS256 keyed with the public key',
      token: `${hs256Input}.${createHmac('sha256', publicPem).update(hs256Input).digest('base64url')}`,
    },
    { id: 'expired 10 min ago', token: mint({ payload: claims({ iat: now - 900, exp: now - 600 }) }) },
    { id: 'no exp', token: mint({ payload: { ...claims(), exp: undefined } }) },
    { id: 'nbf 10 min ahead', token: mint({ payload: claims({ nbf: now + 600 }) }) },
    { id: 'iat 10 min ahead', token: mint({ payload: claims({ iat: now + 600, exp: now + 900 }) }) },
    { id: 'wrong aud', token: mint({ payload: claims({ aud: 'https://other.example' }) }) },
    { id: 'wrong iss', token: mint({ payload: claims({ iss: 'https://evil.example' }) }) },
    { id: 'scope without models:infer', token: mint({ payload: claims({ scope: 'llm:chat' }) }) },
    { id: 'typ JWT (an ID token shape)', token: mint({ header: { ...header, typ: 'JWT' } }) },
    { id: 'no typ', token: mint({ header: { alg: 'ES256', kid: header.kid } }) },
    { id: 'crit header', token: mint({ header: { ...header, crit: ['x-bench'], 'x-bench': true } }) },
    { id: 'duplicated scope claim', token: mint({ payload: dupScope }) },
    { id: '10 KB token', token: mint({ payload: claims({ pad: 'x'.repeat(10_000) }) }) },
    { id: 'unknown kid', token: mint({ header: { ...header, kid: 'no-such-key' } }) },
    {
      id: 'aud as an array holding ours (valid)',
      token: mint({ payload: claims({ aud: [claims().aud, 'https://other.example'] }) }),
      valid: true,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// HAProxy.

function haproxyConfig({ dir, issuer, audience, keyPem, frontPem, clientPem, caFile, ports, backends }) {
  const keyFile = join(dir, 'idp-es256.pem');
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  // The token checks a gateway can make with jwt_verify and ACLs (HAProxy 2.6): one rule each, 401
  // on a bad token, 403 on a missing scope, as the guard answers.
  const checks = `
  http-request deny deny_status 401 unless { req.hdr(authorization) -m beg "Bearer " }
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request set-var(txn.typ) var(txn.bearer),jwt_header_query('$.typ')
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.nbf) var(txn.bearer),jwt_payload_query('$.nbf','int')
  http-request set-var(txn.iat) var(txn.bearer),jwt_payload_query('$.iat','int')
  http-request set-var(txn.scope) var(txn.bearer),jwt_payload_query('$.scope')
  http-request set-var(txn.now) date()
  http-request deny deny_status 401 unless { var(txn.alg) -m str ES256 }
  http-request deny deny_status 401 unless { var(txn.typ) -m str -i at+jwt application/at+jwt }
  http-request deny deny_status 401 unless { var(txn.iss) -m str ${issuer} }
  http-request deny deny_status 401 unless { var(txn.aud) -m str ${audience} }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"${keyFile}") -m int 1 }
  http-request deny deny_status 401 unless { var(txn.exp) -m found }
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int le 0 }
  http-request deny deny_status 401 if { var(txn.nbf),sub(txn.now) -m int gt 0 }
  http-request deny deny_status 401 if { var(txn.iat),sub(txn.now) -m int gt 5 }
  http-request deny deny_status 403 unless { var(txn.scope) -m reg (^|\\s)models:infer(\\s|$) }
  http-request del-header authorization`;
  return `global
  nbthread 1
  maxconn 2000
  tune.ssl.default-dh-param 2048
  log stderr format raw local0 emerg

defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s

frontend fe_http
  bind 127.0.0.1:${ports.http} ssl crt ${frontPem} ssl-min-ver TLSv1.3 alpn http/1.1
${checks}
  default_backend be_http

frontend fe_mtls
  bind 127.0.0.1:${ports.mtls} ssl crt ${frontPem} ssl-min-ver TLSv1.3 alpn http/1.1
${checks}
  default_backend be_mtls

backend be_http
  server sample 127.0.0.1:${backends.http}

backend be_mtls
  server sample 127.0.0.1:${backends.mtls} ssl crt ${clientPem} ca-file ${caFile} verify required verifyhost localhost sni str(localhost) ssl-min-ver TLSv1.3 alpn http/1.1
`;
}

/** Free loopback ports, picked by listening on port 0. */
async function freePorts(n) {
  const { createServer } = await import('node:net');
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise((ok) => {
          const s = createServer();
          s.listen(0, '127.0.0.1', () => ok(s));
        }),
    ),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

async function waitForPort(port, deadlineMs = 10_000) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise((done) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), done(true)));
      s.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port} after ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startHaproxy(cfgFile, cpu, ports, logFd) {
  const bin = process.env.HAPROXY || 'haproxy';
  try {
    execFileSync(bin, ['-c', '-q', '-f', cfgFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (err) {
    if (err?.code === 'ENOENT') {
      throw new Error(
        `no ${bin}: install HAProxy 2.5 or later (jwt_verify), e.g. apt-get install haproxy, or set HAPROXY`,
        { cause: err },
      );
    }
    throw new Error(`${bin} refused the generated configuration (above)`, { cause: err });
  }
  const child = spawn(bin, ['-db', '-f', cfgFile], { stdio: ['ignore', logFd, logFd] });
  const failed = new Promise((_, fail) =>
    child.once('exit', (c) => fail(new Error(`haproxy exited (${c})`))),
  );
  await Promise.race([Promise.all([waitForPort(ports.http), waitForPort(ports.mtls)]), failed]);
  pin(child.pid, cpu);
  const version = execFileSync(bin, ['-v'], { encoding: 'utf8' }).split('\n')[0];
  return { child, version };
}

// ---------------------------------------------------------------------------------------------
// Checks before measuring.

async function check(origins, caPem, validTokens, attackList) {
  const undici = await import('undici');
  const agent = new undici.Agent({ connect: { ca: caPem, servername: 'localhost' } });
  const post = async (origin, token) => {
    const res = await undici.request(`${origin}${INFER_PATH}`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(INFER_BODY),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, score: json?.outputs?.[0]?.data?.[0] };
  };
  try {
    const same = [];
    for (const [label, token] of validTokens) {
      const answers = {};
      for (const d of DESIGNS) answers[d] = await post(origins[d], token);
      const base = await post(origins.plain, undefined);
      for (const d of DESIGNS) {
        if (
          answers[d].status !== 200 ||
          typeof answers[d].score !== 'number' ||
          answers[d].score !== base.score
        ) {
          throw new Error(
            `${label}: ${d} answered ${answers[d].status} (score ${answers[d].score}), plain ${base.status} (score ${base.score})`,
          );
        }
      }
      same.push({ token: label, status: 200, score: base.score });
    }
    const refusals = [];
    for (const a of attackList) {
      const row = { attack: a.id, ...(a.valid ? { valid: true } : {}) };
      for (const d of DESIGNS) row[d] = (await post(origins[d], a.token)).status;
      refusals.push(row);
    }
    return { same, refusals };
  } finally {
    await agent.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The parent.

async function main() {
  const seconds = positiveInt('BENCH_SECONDS', 3);
  const rounds = positiveInt('BENCH_ROUNDS', 3);
  const connections = positiveInt('BENCH_CONNECTIONS', 32);
  const poolSize = positiveInt('BENCH_TOKEN_POOL', 12_000, 1_000_000);
  const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;
  const runList = only ? RUNS.filter((r) => only.has(r.id)) : RUNS;
  if (runList.length === 0)
    throw new TypeError(`BENCH_ONLY names no run of ${RUNS.map((r) => r.id).join(', ')}`);
  if (!existsSync(join(dist, 'sample-model/src/app/app.module.js'))) {
    throw new Error(`${dist} has no compiled sample: run \`npm run build\` first`);
  }
  const pinning = cpus().length >= 2;
  const { busy, order } = pinning ? await coresByIdle() : { busy: undefined, order: [0] };
  const serverCpu = pinning ? cpuIndex('BENCH_SERVER_CPU', order[0]) : undefined;
  const wrkCpu = pinning ? cpuIndex('BENCH_WRK_CPU', order.find((i) => i !== serverCpu) ?? 1) : undefined;
  const profileDir = process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  const { initDevPki } = await lib('dev-pki');
  const { startDevIdp } = await import('@inference-shield/dev-idp');
  const dir = mkdtempSync(join(tmpdir(), 'shield-gateway-bench-'));
  const children = [];
  let idp;
  let haproxy;
  const load = [{ at: 'start', value: loadavg()[0] }];
  try {
    const pki = await initDevPki({ dir: join(dir, 'pki'), clients: ['sample-model', 'gateway'] });
    const apiKeyFile = join(pki.dir, 'llm-api-key');
    writeFileSync(apiKeyFile, `sk-bench-${randomBytes(12).toString('hex')}\n`, { mode: 0o600 });
    mkdirSync(join(dir, 'idp'), { mode: 0o700 });
    const keysFile = join(dir, 'idp', 'jwks.json');
    idp = await startDevIdp({ port: 0, pkiDir: pki.dir, keysFile });
    const minter = tokenMinter(idp, keysFile);
    const logFd = openSync('/dev/null', 'w');
    const script = fileURLToPath(import.meta.url);

    const secured = await startChild({
      script,
      kind: 'in-process',
      setup: {
        env: {
          SHIELD_PKI_DIR: pki.dir,
          SHIELD_MODEL_PORT: '0',
          SHIELD_OIDC_ISSUER: idp.issuer,
          SHIELD_OIDC_AUDIENCE: idp.audience,
          // The chat routes are not used here; the upstream client only needs a valid setup.
          SHIELD_LLM_URL: 'https://localhost:9/v1',
          SHIELD_LLM_API_KEY_FILE: apiKeyFile,
        },
      },
      cpu: serverCpu,
      logFd,
      children,
      profileDir,
    });
    const backendSetup = { serverCert: pki.serverCert, serverKey: pki.serverKey, caCert: pki.caCert };
    const backendHttp = await startChild({
      script,
      kind: 'backend-http',
      setup: backendSetup,
      cpu: serverCpu,
      logFd,
      children,
      profileDir,
    });
    const backendMtls = await startChild({
      script,
      kind: 'backend-mtls',
      setup: backendSetup,
      cpu: serverCpu,
      logFd,
      children,
      profileDir,
    });

    const frontPem = join(dir, 'haproxy-front.pem');
    writeFileSync(
      frontPem,
      `${readFileSync(pki.serverCert, 'utf8')}\n${readFileSync(pki.serverKey, 'utf8')}`,
      {
        mode: 0o600,
      },
    );
    const clientPem = join(dir, 'haproxy-client.pem');
    writeFileSync(
      clientPem,
      `${readFileSync(pki.clientCert('gateway'), 'utf8')}\n${readFileSync(pki.clientKey('gateway'), 'utf8')}`,
      { mode: 0o600 },
    );
    const [httpPort, mtlsPort] = await freePorts(2);
    const ports = { http: httpPort, mtls: mtlsPort };
    const cfgFile = join(dir, 'haproxy.cfg');
    const cfg = haproxyConfig({
      dir,
      issuer: idp.issuer,
      audience: idp.audience,
      keyPem: minter.publicPem,
      frontPem,
      clientPem,
      caFile: pki.caCert,
      ports,
      backends: { http: backendHttp.port, mtls: backendMtls.port },
    });
    writeFileSync(cfgFile, cfg);
    haproxy = await startHaproxy(cfgFile, serverCpu, ports, logFd);

    const origins = {
      'in-process': `https://127.0.0.1:${secured.port}`,
      'gw-http': `https://127.0.0.1:${ports.http}`,
      'gw-mtls': `https://127.0.0.1:${ports.mtls}`,
      plain: `http://127.0.0.1:${backendHttp.port}`,
    };
    const caPem = readFileSync(pki.caCert);
    const idpToken = await idp.getToken({ scope: SCOPE });
    const attackList = attacks(minter);
    const checked = await check(
      origins,
      caPem,
      [
        ['dev IdP token', idpToken],
        ['minted token', minter.mint()],
      ],
      attackList,
    );
    printRefusals(checked.refusals);

    const bodyFile = join(dir, 'infer.json');
    writeFileSync(bodyFile, JSON.stringify(INFER_BODY));
    const authFile = join(dir, 'authorization');
    const tokensFile = join(dir, 'tokens');
    const newToken = async () => writeFileSync(authFile, `Bearer ${minter.mint()}\n`, { mode: 0o600 });
    const newPool = (n) =>
      writeFileSync(tokensFile, `${Array.from({ length: n }, () => minter.mint()).join('\n')}\n`, {
        mode: 0o600,
      });

    const processes = {
      'in-process': [secured.child],
      'gw-http': [backendHttp.child, haproxy.child],
      'gw-mtls': [backendMtls.child, haproxy.child],
      plain: [backendHttp.child],
    };
    const cpuOf = async (procs) => {
      const out = [];
      for (const p of procs)
        out.push(p === haproxy.child ? procCpuMicros(p.pid) : cpuMicros(await ask(p, 'cpu', 'cpu')));
      return out;
    };
    // Requests each Node server answered under load (warm-ups included): the denominator of a
    // V8 profile's self time per request (bench/identity/profile-diff.mjs).
    const served = new Map();
    const measure = async (run, runSeconds) => {
      if (run.mode === 'fresh') newPool(poolSize);
      const procs = processes[run.design];
      const before = await cpuOf(procs);
      const r = await runWrk({
        url: `${origins[run.design]}${INFER_PATH}`,
        script: join(here, run.mode === 'fresh' ? 'post-tokens.lua' : '../sample/post-json.lua'),
        scriptArgs:
          run.mode === 'fresh'
            ? [bodyFile, tokensFile]
            : run.mode === 'reused'
              ? [bodyFile, authFile]
              : [bodyFile],
        seconds: runSeconds,
        connections,
        cpu: wrkCpu,
      });
      const after = await cpuOf(procs);
      // Any refusal fails the run. A socket error or two on a loaded shared machine does not (at
      // most 1 in 200 requests); they are counted in the results.
      const socketErrors = r.connectErrors + r.readErrors + r.writeErrors + r.timeouts;
      if (r.non2xx > 0 || r.requests === 0 || socketErrors > Math.max(2, r.requests / 200)) {
        throw new Error(
          `${run.id}: ${r.requests} requests, ${r.non2xx} non-2xx, ${r.connectErrors} connect, ${r.readErrors} read, ` +
            `${r.writeErrors} write errors, ${r.timeouts} timeouts`,
        );
      }
      if (socketErrors > 0)
        console.error(`${run.id}: ${socketErrors} socket errors in ${r.requests} requests (tolerated)`);
      for (const p of procs) if (p !== haproxy.child) served.set(p, (served.get(p) ?? 0) + r.requests);
      const used = after.map((a, i) => a - before[i]);
      const total = used.reduce((a, b) => a + b, 0);
      return {
        rps: r.requests / (r.durationUs / 1e6),
        requests: r.requests,
        p50Ms: r.p50Us / 1000,
        p99Ms: r.p99Us / 1000,
        cpuUs: total / r.requests,
        ...(run.design.startsWith('gw-')
          ? { backendCpuUs: used[0] / r.requests, haproxyCpuUs: used[1] / r.requests }
          : {}),
        coreBusy: total / r.durationUs,
        ...(socketErrors > 0 ? { socketErrors } : {}),
        ...(run.mode === 'fresh' ? { distinctTokens: Math.min(poolSize, r.requests) } : {}),
      };
    };

    await newToken();
    for (const run of runList) await measure(run, 1);
    const runs = Object.fromEntries(runList.map((r) => [r.id, []]));
    for (let round = 0; round < rounds; round++) {
      await newToken();
      const ordered = round % 2 === 0 ? runList : [...runList].reverse();
      for (const run of ordered) runs[run.id].push(await measure(run, seconds));
      load.push({ at: `round ${round + 1}`, value: loadavg()[0] });
      console.error(`round ${round + 1}/${rounds} done, load average ${loadavg()[0].toFixed(2)}`);
    }

    const summary = {};
    for (const run of runList) {
      const r = runs[run.id];
      const pick = (k) => r.map((x) => x[k]);
      summary[run.id] = {
        rps: median(pick('rps')),
        p50Ms: median(pick('p50Ms')),
        p99Ms: median(pick('p99Ms')),
        cpuUs: median(pick('cpuUs')),
        cpuUsMin: Math.min(...pick('cpuUs')),
        cpuUsMax: Math.max(...pick('cpuUs')),
        coreBusy: median(pick('coreBusy')),
        ...(run.design.startsWith('gw-')
          ? { backendCpuUs: median(pick('backendCpuUs')), haproxyCpuUs: median(pick('haproxyCpuUs')) }
          : {}),
        ...(run.mode === 'fresh' ? { requestsMax: Math.max(...pick('requests')) } : {}),
      };
    }
    // In-process against a gateway, by CPU per request: gateway µs / in-process µs (> 1: in-process is cheaper).
    const ratios = {};
    for (const mode of ['reused', 'fresh']) {
      for (const gw of ['gw-http', 'gw-mtls']) {
        const a = summary[`in-process/${mode}`];
        const b = summary[`${gw}/${mode}`];
        if (!a || !b) continue;
        const perRound = runs[`in-process/${mode}`].map((x, i) => runs[`${gw}/${mode}`][i].cpuUs / x.cpuUs);
        ratios[`${mode}:${gw}`] = {
          cpu: b.cpuUs / a.cpuUs,
          perRoundMin: Math.min(...perRound),
          perRoundMax: Math.max(...perRound),
        };
      }
    }
    const vsPlain = {};
    if (summary.plain)
      for (const run of runList)
        if (run.id !== 'plain') vsPlain[run.id] = summary.plain.cpuUs / summary[run.id].cpuUs;

    const result = {
      date: new Date().toISOString(),
      node: process.version,
      openssl: process.versions.openssl,
      haproxy: haproxy.version,
      cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
      loadAverage1m: load,
      pinning: pinning
        ? { servers: serverCpu, wrk: wrkCpu, coreBusyBefore: busy?.map((b) => Number(b.toFixed(2))) }
        : 'none (one CPU)',
      servedRequests: {
        'in-process': served.get(secured.child) ?? 0,
        'backend-http': served.get(backendHttp.child) ?? 0,
        'backend-mtls': served.get(backendMtls.child) ?? 0,
      },
      settings: {
        seconds,
        rounds,
        connections,
        tokenPool: poolSize,
        cacheEntries: CACHE_ENTRIES,
        wrkThreads: 1,
      },
      checked,
      summary,
      ratios,
      vsPlain,
      runs,
    };
    printSummary(result);
    if (profileDir) {
      console.log(
        `V8 profiles in ${profileDir}; requests served under load: ${Object.entries(result.servedRequests)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
    }
    const out = process.env.BENCH_OUT ?? join(here, 'README.md');
    if (out !== '-') {
      const resultsFile = join(here, 'results.json');
      let previous = [];
      try {
        previous = JSON.parse(readFileSync(resultsFile, 'utf8')).runs ?? [];
      } catch {
        previous = [];
      }
      const kept = [...previous, result].slice(-KEEP_RUNS);
      writeFileSync(
        resultsFile,
        await formatted(resultsFile, `${JSON.stringify({ runs: kept }, null, 2)}\n`),
      );
      writeFileSync(out, await formatted(out, readme(result, kept, cfg)));
      console.error(`wrote ${out} and ${resultsFile}`);
    }
  } finally {
    await Promise.all(children.map(stopChild));
    if (haproxy && haproxy.child.exitCode === null) {
      const exited = new Promise((ok) => haproxy.child.once('exit', ok));
      haproxy.child.kill('SIGTERM');
      await exited;
    }
    if (idp) await idp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Output.

const n0 = (x) => Math.round(x).toLocaleString('en-US');
const refused = (status) => status >= 400;

function refusalRows(refusals) {
  return refusals.map((r) => [
    r.attack,
    ...DESIGNS.map((d) => `${refused(r[d]) ? 'refused' : '**accepted**'} (${r[d]})`),
    DESIGNS.every((d) => refused(r[d]) === refused(r['in-process'])) ? '' : 'differs',
  ]);
}
const REFUSAL_HEADER = ['request', ...DESIGNS, ''];

function printRefusals(refusals) {
  console.log(table(REFUSAL_HEADER, refusalRows(refusals)));
}

function rows(r) {
  return Object.entries(r.summary).map(([id, v]) => {
    const [design, mode] = id.split('/');
    return [
      LABELS[design],
      mode ?? '–',
      n0(v.rps),
      `${v.p50Ms.toFixed(2)} ms`,
      n0(v.cpuUs),
      `${n0(v.cpuUsMin)}–${n0(v.cpuUsMax)}`,
      v.haproxyCpuUs === undefined ? '–' : `${n0(v.haproxyCpuUs)} + ${n0(v.backendCpuUs)}`,
      `${(v.coreBusy * 100).toFixed(0)} %`,
      r.vsPlain[id] === undefined ? (id === 'plain' ? '1.00' : '–') : r.vsPlain[id].toFixed(2),
    ];
  });
}
const HEADER = [
  'design',
  'token',
  'req/s (median)',
  'p50',
  'CPU µs/req',
  'CPU range',
  'HAProxy + backend µs',
  'core busy',
  'vs plain (CPU)',
];

function ratioLines(r) {
  return Object.entries(r.ratios).map(
    ([k, v]) =>
      `- ${k.replace(':', ' token, in-process vs ')}: **${v.cpu.toFixed(2)}×** by CPU per request (rounds ${v.perRoundMin.toFixed(2)}–${v.perRoundMax.toFixed(2)})`,
  );
}

function printSummary(r) {
  console.log(table(HEADER, rows(r)));
  for (const l of ratioLines(r)) console.log(l);
  console.log(`load average (1 min): ${r.loadAverage1m.map((l) => l.value.toFixed(2)).join(' → ')}`);
}

function readme(r, kept, cfg) {
  const loads = r.loadAverage1m.map((l) => `${l.at} ${l.value.toFixed(2)}`).join(', ');
  const history = table(
    [
      'date (UTC)',
      'Node',
      'load avg',
      'reused vs gw-http',
      'reused vs gw-mtls',
      'fresh vs gw-http',
      'fresh vs gw-mtls',
    ],
    kept.map((k) => [
      k.date.slice(0, 16).replace('T', ' '),
      k.node,
      `${Math.min(...k.loadAverage1m.map((l) => l.value)).toFixed(1)}–${Math.max(...k.loadAverage1m.map((l) => l.value)).toFixed(1)}`,
      ...['reused:gw-http', 'reused:gw-mtls', 'fresh:gw-http', 'fresh:gw-mtls'].map(
        (x) => k.ratios[x]?.cpu.toFixed(2) ?? '–',
      ),
    ]),
  );
  const differ = r.checked.refusals.filter(
    (x) => !DESIGNS.every((d) => refused(x[d]) === refused(x['in-process'])),
  );
  return `<!-- Generated by bench/gateway/gateway.bench.mjs: edit the script, not this file. -->

# Gateway comparison (issue #18, target 1)

The sample's in-process security (TLS 1.3 + the identity guard inside the Node process) against a
gateway doing the same checks in front of the same sample with its guard off, in one run, by
CPU per request. A benchmark, not a test: it fails only when a request is refused or answered
differently.

\`\`\`sh
npm run build && node bench/gateway/gateway.bench.mjs   # needs haproxy (2.6, jwt_verify) and wrk
# knobs: BENCH_SECONDS (3), BENCH_ROUNDS (3), BENCH_CONNECTIONS (32), BENCH_TOKEN_POOL (12000),
#        BENCH_SERVER_CPU, BENCH_WRK_CPU, BENCH_ONLY (run ids), BENCH_PROFILE (V8 CPU profiles),
#        BENCH_OUT ("-": print only), HAPROXY (binary)
\`\`\`

## What runs

| design | path | token checks |
| --- | --- | --- |
| in-process | wrk → HTTPS (TLS 1.3) → the sample as \`npm start\` runs it (\`createHttpsApp(AppModule.forConfig(config))\`) | the identity guard: jose \`jwtVerify\` (ES256), \`typ: at+jwt\`, \`iss\`, \`aud\`, \`exp\`/\`nbf\`/\`iat\` with 5 s tolerance, \`crit\`, strict JSON (no duplicate members), size bound, scope policy, audit line |
| gw-http | wrk → HAProxy (${r.haproxy.replace(/ - .*/, '')}, TLS 1.3, the same server certificate) → plain HTTP → the sample's \`SampleModelModule\` without \`IdentityModule\` | \`jwt_verify\` with the IdP's ES256 public key (PEM) and ACLs: \`alg\`, \`typ\`, \`iss\`, \`aud\`, \`exp\` present and > \`date()\`, \`nbf\`, \`iat\` ≤ now + 5 s, scope contains \`models:infer\` |
| gw-mtls | the same HAProxy front → HTTPS with a client certificate (\`verify required\`, TLS 1.3) → the same module served by \`createHttpsApp\` with mTLS required | the same |
| plain | wrk → plain HTTP → the same guard-off module, no token | none (baseline) |

Cores: the in-process server runs on one core; HAProxy (\`nbthread 1\`) and its backend share
that same core (the designs are loaded one at a time, the idle ones sit idle); wrk (one thread, ${r.settings.connections} keep-alive connections) runs on the other; servers are
loaded one at a time. CPU per request is the Node servers' \`process.cpuUsage()\` plus HAProxy's
utime + stime (\`/proc/<pid>/stat\`, 10 ms ticks) around each wrk run, over its requests. Token
modes: **reused** (one token for the run, as a real client does: the guard's cache hits) and
**fresh** (a new token on each request, cycling through ${n0(r.settings.tokenPool)} tokens minted for the run, more than
the guard's ${n0(r.settings.cacheEntries)}-entry cache, so every request is a verification in the sample; HAProxy has no
cache). Tokens are signed with the dev IdP's own key (its keys file): the same header and claims as
its \`client_credentials\` tokens, a new \`jti\` each; a real IdP token is among the checks below.
One 1 s warm-up per run, then ${r.settings.rounds} rounds of ${r.settings.seconds} s, the order reversed every other round;
medians.

## Same answers, different refusals

Before measuring, the three designs were checked to give the same answer (status 200, same fraud
score as the plain server) to ${r.checked.same.map((s) => s.token).join(' and ')}. Then each request below (a valid
ES256 token from the IdP's key but for the one thing named) was sent to each design:

${table(REFUSAL_HEADER, refusalRows(r.checked.refusals))}

${differ.length === 0 ? 'No refusal differed.' : `**${differ.length} differ**: ${differ.map((x) => x.attack).join('; ')}.`}

## Results

${r.date.slice(0, 10)}, ${r.date.slice(11, 16)} UTC. Machine: ${r.cpus}, Linux, Node ${r.node} (OpenSSL ${r.openssl}),
${r.haproxy}. Load average (1 min): ${loads}. Servers on CPU ${r.pinning.servers ?? '–'}, wrk on CPU ${r.pinning.wrk ?? '–'}.

${table(HEADER, rows(r))}

In-process against the gateway, by CPU per request (gateway µs / in-process µs; > 1: in-process is
cheaper; target: ≥ 1.45 reused, ≥ 1.1 fresh):

${ratioLines(r).join('\n')}

Figures from a machine shared with other work move between runs by more than the targets'
margins: compare the ratios of several runs (below), and the CPU range of each run's rounds.

## Where the µs go

\`\`\`sh
BENCH_PROFILE=/tmp/gw-prof BENCH_ONLY=in-process/fresh,plain BENCH_OUT=- node bench/gateway/gateway.bench.mjs
node bench/identity/profile-diff.mjs /tmp/gw-prof/backend-http.cpuprofile <backend-http requests> \\
     /tmp/gw-prof/in-process.cpuprofile <in-process requests>
\`\`\`

The run prints the requests each server answered under load; the diff gives, function by function,
the self time per request the sample as shipped spends that its guard-off backend does not. The
attribution of the last profiled runs is in [../README.md](../README.md) ("Reading the misses").

## Runs kept (\`results.json\`, newest last)

${history}

## The HAProxy configuration of the last run

\`\`\`
${cfg.replace(/\/tmp\/[^\s"]+\//g, '<tmp>/')}\`\`\`
`;
}

if (process.argv[2] === '--serve') await serve(process.argv[3]);
else await main();
