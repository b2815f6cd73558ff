// The sample stack, secured vs unsecured, in one run. Build first, then:
//
//   npm run build && node bench/sample/sample.bench.mjs      # writes bench/sample/README.md
//
// Two comparisons, each against the same sample code with the security taken out:
//
//   inference  POST /v2/models/fraud-lr/infer, a 1-row KServe v2 body
//     secured    the sample server exactly as `npm start` runs it: createHttpsApp(AppModule.forConfig
//                (config)) (TLS 1.2+/1.3, inbound mTLS optional, identity guard with the dev IdP's
//                OIDC issuer, audit lines to stdout), a real access token from the dev IdP;
//     plain      NestFactory.create over plain HTTP, a module importing SampleModelModule only
//                (no IdentityModule: the policy decorators are inert metadata), no token.
//   chat       POST /v1/chat/completions, non-streamed, a short prompt, stand-in with tokenDelayMs 0
//     secured    the same secured server: the sample's /v1 relay (LlmRelayModule: guard, access by
//                scope llm:chat, per-principal budget, a signed caller assertion per request) on
//                UpstreamClient.fetch to the stand-in LLM over mTLS, keyless as shipped (the client
//                certificate exchanged at the stand-in's /oauth/token for a short-lived token).
//                The sample's budgets allow 40 000 tokens a minute per principal, so the load
//                cycles through CHAT_PRINCIPALS access tokens (one per client, each reused), and
//                SHIELD_LLM_REQUESTS_PER_MINUTE is raised to its maximum;
//     plain      plain HTTP, no guard, a bench-only controller (below): a minimal check of the body
//                (an object with a messages array, not streamed), an AbortController tied to the
//                caller's hang-up, the OpenAI SDK with maxRetries 0 whose fetch is undici's request()
//                on a plaintext pool of the same size (the answer read whole, a minimal Response), with
//                a static API key, to the same stand-in handler listening on plain HTTP. No access
//                rule, no budget, no caller assertion.
//     split      plain HTTP, no guard, the same bench-only steps on a second route whose SDK uses
//                UpstreamClient.fetch (mTLS, the same keyless credential): separates the outbound
//                hop's cost from the inbound's and the relay's.
//
// Processes: the secured server, the plain server (both pinned to BENCH_SERVER_CPU, loaded one at a
// time), the stand-in LLM (HTTPS+mTLS and HTTP listeners sharing one request handler, pinned to
// BENCH_UPSTREAM_CPU), wrk (pinned to BENCH_WRK_CPU, one thread, keep-alive), and this one (the dev
// IdP, idle during the runs). Rounds alternate between the runs (the order reversed every
// other round) so that other load on the machine hits all alike; medians are compared. Each
// server's CPU time (process.cpuUsage over IPC) around each wrk run gives CPU per request, which
// moves much less with other load than requests/s. Servers write their logs (the audit line of
// each request included) to /dev/null, the cheapest sink there is.
//
// Environment: BENCH_SECONDS (per run, 3), BENCH_ROUNDS (3), BENCH_CONNECTIONS (inference, 32),
// BENCH_CHAT_CONNECTIONS (16), BENCH_SERVER_CPU (default: the core idlest over the second before
// the run), BENCH_WRK_CPU and BENCH_UPSTREAM_CPU (default: the next idlest),
// BENCH_DIST (compiled tree, default dist), BENCH_PROFILE (a folder: each server writes a V8 CPU
// profile <kind>.cpuprofile there when it stops), BENCH_OUT (README path; "-" prints only and writes
// neither the README nor results.json).
import 'reflect-metadata';
import { execFileSync, fork, spawn } from 'node:child_process';
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const dist = resolve(root, process.env.BENCH_DIST ?? 'dist');
const fromDist = (path) => import(pathToFileURL(join(dist, path)).href);
const lib = (name) => import(`@inference-shield/${name}`);

const MODEL = 'fraud-lr';
const INFER_PATH = `/v2/models/${MODEL}/infer`;
const CHAT_PATH = '/v1/chat/completions';
/** The plain server's extra route: no guard inbound, the Shield mTLS client outbound. */
const CHAT_MTLS_PATH = '/v1/mtls/chat/completions';
const INFER_BODY = {
  inputs: [{ name: 'features', shape: [1, 8], datatype: 'FP32', data: [180, 21, 90, 0.4, 40, 4, 0, 0] }],
};
const CHAT_BODY = {
  model: 'standin-chat',
  messages: [{ role: 'user', content: 'Is a card-not-present purchase at 3 am risky?' }],
  max_tokens: 16,
};
/** The scope the sample's routes ask for: models:infer (infer) and llm:chat (chat). */
const SCOPE = 'models:infer llm:chat';
/**
 * Clients of the secured chat run, each with its own access token (reused on every request it
 * sends). The sample's relay allows a principal 40 000 tokens a minute (about 30 a request here):
 * one client could not keep the secured chat run busy for more than a second or so.
 */
const CHAT_PRINCIPALS = 128;
/** Pool of the plaintext baseline: the upstream client's default (libs/upstream, pool.connections). */
const UPSTREAM_POOL = 16;
/** A server that has not answered over IPC by then is stuck: the run fails instead of hanging. */
const IPC_TIMEOUT_MS = 60_000;
/**
 * What the secured chat run goes through, kept with each run: runs before this value existed went
 * through the sample's former ChatController with a static API key.
 */
const CHAT_PATH_DESIGN = 'llm-relay, keyless';
/** Runs kept in results.json (newest last). */
const KEEP_RUNS = 10;

const SCENARIOS = [
  { id: 'infer-secured', kind: 'inference', server: 'secured', path: INFER_PATH, body: 'infer' },
  { id: 'infer-plain', kind: 'inference', server: 'plain', path: INFER_PATH, body: 'infer' },
  { id: 'chat-secured', kind: 'chat', server: 'secured', path: CHAT_PATH, body: 'chat' },
  { id: 'chat-plain', kind: 'chat', server: 'plain', path: CHAT_PATH, body: 'chat' },
  { id: 'chat-plain-mtls', kind: 'chat', server: 'plain', path: CHAT_MTLS_PATH, body: 'chat' },
];
const LABELS = {
  'infer-secured': 'inference, HTTPS + OIDC guard (sample as shipped)',
  'infer-plain': 'inference, plain HTTP, no guard',
  'chat-secured': 'chat, HTTPS + guard + relay → stand-in over mTLS',
  'chat-plain': 'chat, plain HTTP, no guard → stand-in over HTTP',
  'chat-plain-mtls': 'chat, plain HTTP, no guard → stand-in over mTLS',
};

// ---------------------------------------------------------------------------------------------
// Children. Each answers `cpu` with its CPU time so far and `close` by closing and exiting; it exits
// by itself when the parent goes away, so a crashed run leaves nothing listening.

function onParentMessages(handlers) {
  process.on('message', (msg) => {
    const handler = handlers[msg];
    if (handler) void handler();
  });
  process.on('disconnect', () => process.exit(0));
}

/**
 * Access tokens for the secured chat run's clients: the header and claims of the dev IdP's
 * `client_credentials` access tokens (ES256, `typ: at+jwt`, its issuer and audience, 300 s), signed
 * with the IdP's own key (from its keys file), one `sub` per client: the IdP mints about ten a
 * second, and the relay budgets by subject.
 */
function tokenMinter(idp, keysFile) {
  const jwk = JSON.parse(readFileSync(keysFile, 'utf8')).keys.find((k) => k.kid === idp.signingKid);
  if (!jwk?.d) throw new Error('the dev IdP keys file has no private key for its signing kid');
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = b64({ alg: 'ES256', typ: 'at+jwt', kid: idp.signingKid });
  const mint = (subject, scope = SCOPE) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      jti: randomBytes(32).toString('base64url'),
      sub: subject,
      iat: now,
      exp: now + 300,
      scope,
      client_id: subject,
      iss: idp.issuer,
      aud: idp.audience,
    };
    const input = `${header}.${b64(claims)}`;
    const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  };
  return { mint };
}

/** The sample server as main.ts starts it, on port 0. */
async function serveSecured(setup) {
  const { createHttpsApp } = await lib('https');
  const { AppModule } = await fromDist('sample-model/src/app/app.module.js');
  const { loadSampleConfig } = await fromDist('sample-model/src/app/sample-config.js');
  const config = loadSampleConfig(setup.env);
  // The options of sample-model/src/main.ts, unchanged.
  const app = await createHttpsApp(AppModule.forConfig(config), {
    tls: config.tls,
    mtls: {
      mode: 'optional',
      ca: { file: config.mtlsCa },
      ...(config.mtlsCrl ? { crl: config.mtlsCrl } : {}),
    },
    limits: { maxBodyBytes: 512 * 1024 },
    timeouts: { drainDelayMs: config.drainDelayMs },
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

/** The same inference module and the baseline chat controller, plain HTTP, no IdentityModule. */
async function servePlain(setup) {
  const { Body, Controller, HttpCode, Module, Post, Req, Res } = await import('@nestjs/common');
  const { HttpAdapterHost, NestFactory } = await import('@nestjs/core');
  const { default: OpenAI } = await import('openai');
  const { Agent } = await import('undici');
  const { ShieldError, ShieldExceptionFilter } = await lib('core');
  const { createUpstreamRegistry } = await lib('upstream');
  const { SampleModelModule } = await fromDist('sample-model/src/index.js');

  const pool = new Agent({
    connections: UPSTREAM_POOL,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 30_000,
    maxOrigins: 1,
  });
  // What UpstreamClient.fetch does minus the security: undici's request() on the pool, its answer
  // handed to the SDK as a minimal Response (as the client's lean fetch does: undici's own fetch
  // costs about five times the CPU, see bench/upstream), no origin check, no pinned TLS, no
  // timeouts, no typed errors, redirects not followed. The answer is read whole (never streamed).
  const plainFetch = async (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const res = await pool.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: init.method ?? 'GET',
      headers: Object.fromEntries(new Headers(init.headers)),
      body: init.body ?? null,
      signal: init.signal ?? undefined,
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) headers.append(name, v);
    }
    const bytes = new Uint8Array(await res.body.arrayBuffer());
    const text = async () => new TextDecoder().decode(bytes);
    // What the SDK reads of a non-streamed answer (status, headers, json or text).
    return {
      ok: res.statusCode >= 200 && res.statusCode < 300,
      status: res.statusCode,
      statusText: '',
      url: url.href,
      redirected: false,
      headers,
      get body() {
        return new Response(bytes).body;
      },
      text,
      json: async () => JSON.parse(await text()),
      arrayBuffer: async () => bytes.slice().buffer,
    };
  };
  const apiKey = readFileSync(setup.apiKeyFile, 'utf8').trim();
  // For the split of the chat cost: the sample's upstream (pinned mTLS pool, keyless: the client
  // certificate exchanged at the stand-in's token endpoint) built with the options of
  // sample-model/src/app/app.module.ts, but reached from this unguarded plain-HTTP server.
  const registry = await createUpstreamRegistry({
    upstreams: {
      llm: {
        baseUrl: setup.llmMtlsUrl,
        ca: { file: setup.pki.caCert },
        clientCertificate: { cert: setup.pki.clientCert, key: setup.pki.clientKey, watch: true },
        credential: { certificateExchange: { tokenEndpoint: setup.llmTokenUrl } },
      },
    },
  });
  const llm = registry.client('llm');

  /**
   * The least a non-secured relay of a non-streamed chat call does: the body is an object with a
   * non-empty `messages` array (what the SDK needs to build its request), no `stream`. No field
   * bounds, no model catalogue, no access rule, no budget: the relay's checks are part of what the
   * secured run pays for.
   */
  const chatRequestOf = (body) => {
    if (
      body === null ||
      typeof body !== 'object' ||
      !Array.isArray(body.messages) ||
      body.messages.length === 0 ||
      (body.model !== undefined && typeof body.model !== 'string')
    ) {
      throw new ShieldError('ERR_INVALID_INPUT', { detail: 'expected a chat completion request' });
    }
    if (body.stream === true)
      throw new ShieldError('ERR_INVALID_INPUT', { detail: 'the baseline does not stream' });
    return body;
  };

  // The plain chat path: body check, abort on hang-up, one SDK call (no retries), the answer sent
  // back as is. No guard metadata, no caller assertion (there is no caller identity to assert).
  class PlainChatController {
    constructor() {
      this.openai = new OpenAI({
        baseURL: setup.llmUrl,
        apiKey,
        fetch: plainFetch,
        maxRetries: 0,
        timeout: 120_000,
      });
      this.openaiMtls = new OpenAI({
        baseURL: llm.baseUrl,
        apiKey: 'replaced-by-the-upstream-client',
        fetch: llm.fetch,
        maxRetries: 0,
        timeout: 120_000,
      });
    }

    complete(req, res, body) {
      return this.relay(this.openai, res, body);
    }

    completeMtls(req, res, body) {
      return this.relay(this.openaiMtls, res, body);
    }

    async relay(openai, res, body) {
      const chat = chatRequestOf(body);
      const abort = new AbortController();
      const onClose = () => {
        if (!res.writableFinished) abort.abort();
      };
      res.once('close', onClose);
      try {
        const completion = await openai.chat.completions.create(
          {
            model: chat.model ?? 'standin-chat',
            messages: [...chat.messages],
            ...(chat.max_tokens !== undefined ? { max_tokens: chat.max_tokens } : {}),
            ...(chat.temperature !== undefined ? { temperature: chat.temperature } : {}),
            stream: false,
          },
          { signal: abort.signal, headers: {} },
        );
        res.status(200).json(completion);
      } catch (err) {
        throw new ShieldError('ERR_UPSTREAM_BAD_RESPONSE', { cause: err });
      } finally {
        res.off('close', onClose);
      }
    }
  }
  const param = (decorator, index) => (target, key) => decorator(target, key, index);
  Reflect.decorate(
    [Post('chat/completions'), HttpCode(200), param(Req(), 0), param(Res(), 1), param(Body(), 2)],
    PlainChatController.prototype,
    'complete',
    Object.getOwnPropertyDescriptor(PlainChatController.prototype, 'complete'),
  );
  Reflect.decorate(
    [Post('mtls/chat/completions'), HttpCode(200), param(Req(), 0), param(Res(), 1), param(Body(), 2)],
    PlainChatController.prototype,
    'completeMtls',
    Object.getOwnPropertyDescriptor(PlainChatController.prototype, 'completeMtls'),
  );
  Reflect.decorate([Controller('v1')], PlainChatController);

  class PlainModule {}
  Reflect.decorate(
    [Module({ imports: [SampleModelModule.forRoot({})], controllers: [PlainChatController] })],
    PlainModule,
  );
  const app = await NestFactory.create(PlainModule, { logger: ['error', 'warn', 'log'] });
  app.useGlobalFilters(new ShieldExceptionFilter(app.get(HttpAdapterHost)));
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address();
  onParentMessages({
    cpu: () => process.send({ cpu: process.cpuUsage() }),
    close: async () => {
      await app.close();
      await Promise.all([pool.close(), registry.close()]);
      process.exit(0);
    },
  });
  process.send({ ready: { port } });
}

/**
 * The stand-in LLM (HTTPS, client certificate required; tokens from its /oauth/token exchange of
 * the client certificate, as the keyless sample uses, or a static API key, as the plaintext
 * baseline uses) and, for the baseline, a plain HTTP listener on the very same request handler:
 * same routes, same answers, same counters.
 */
async function serveStandin(setup) {
  const { createLlmStandin } = await import('@inference-shield/llm-standin');
  const standin = await createLlmStandin({
    port: 0,
    host: '127.0.0.1',
    cert: setup.pki.serverCert,
    key: setup.pki.serverKey,
    ca: setup.pki.caCert,
    apiKeys: [readFileSync(setup.apiKeyFile, 'utf8').trim()],
    tokenEndpoint: {},
    tokenDelayMs: 0,
  });
  const handlers = standin.server.listeners('request');
  if (handlers.length !== 1 || typeof handlers[0] !== 'function') {
    throw new Error(`expected one request handler on the stand-in, found ${handlers.length}`);
  }
  // The stand-in's own server timeouts, so the two listeners differ only by TLS.
  const plain = createHttpServer(
    { headersTimeout: 10_000, requestTimeout: 60_000, keepAliveTimeout: 30_000 },
    handlers[0],
  );
  await new Promise((ok, fail) => {
    plain.once('error', fail);
    plain.listen(0, '127.0.0.1', ok);
  });
  onParentMessages({
    cpu: () => process.send({ cpu: process.cpuUsage() }),
    stats: () =>
      process.send({
        stats: {
          ...standin.stats,
          tokenRequests: standin.tokenEndpoint?.stats.tokenRequests,
          tokensIssued: standin.tokenEndpoint?.stats.tokensIssued,
        },
      }),
    close: async () => {
      plain.closeAllConnections();
      await Promise.all([standin.close(), new Promise((ok) => plain.close(ok))]);
      process.exit(0);
    },
  });
  process.send({ ready: { httpsPort: standin.port, httpPort: plain.address().port } });
}

async function serve(kind) {
  const setup = await new Promise((ok) => process.once('message', ok));
  if (kind === 'secured') await serveSecured(setup);
  else if (kind === 'plain') await servePlain(setup);
  else if (kind === 'standin') await serveStandin(setup);
  else throw new Error(`unknown server kind ${kind}`);
}

// ---------------------------------------------------------------------------------------------
// The parent.

function positiveInt(name, fallback) {
  const raw = process.env[name];
  const v = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < 1 || v > 3600)
    throw new TypeError(`${name} must be an integer from 1 to 3600`);
  return v;
}

/** Busy time of each core over one second, from /proc/stat (Linux); undefined elsewhere. */
async function coreBusy() {
  const read = () =>
    readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((l) => /^cpu\d+ /.test(l))
      .map((l) => {
        const t = l.trim().split(/\s+/).slice(1).map(Number);
        const idle = (t[3] ?? 0) + (t[4] ?? 0);
        return { idle, total: t.reduce((a, b) => a + b, 0) };
      });
  try {
    const a = read();
    await new Promise((ok) => setTimeout(ok, 1000));
    const b = read();
    return b.map((x, i) => 1 - (x.idle - a[i].idle) / Math.max(1, x.total - a[i].total));
  } catch {
    return undefined;
  }
}

function cpuIndex(name, fallback) {
  const raw = process.env[name];
  const v = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < 0 || v >= cpus().length) {
    throw new TypeError(`${name} must be a CPU index from 0 to ${cpus().length - 1}`);
  }
  return v;
}

/** Ask a child something over IPC; a child that does not answer in time fails the run. */
function ask(child, message, key) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      fail(new Error(`no "${key}" answer from a server within ${IPC_TIMEOUT_MS} ms`));
    }, IPC_TIMEOUT_MS);
    const onMessage = (m) => {
      if (m && typeof m === 'object' && key in m) {
        clearTimeout(timer);
        child.off('message', onMessage);
        ok(m[key]);
      }
    };
    child.on('message', onMessage);
    if (message !== undefined) child.send(message);
  });
}

async function startChild(kind, setup, cpu, logFd, children) {
  const profileDir = process.env.BENCH_PROFILE;
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], {
    stdio: ['ignore', logFd, 'inherit', 'ipc'],
    ...(profileDir
      ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${kind}.cpuprofile`] }
      : {}),
  });
  children.push(child);
  // All threads (main, libuv pool, V8 helpers, onnxruntime's) on one core, when there are two.
  if (cpu !== undefined)
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(child.pid)], { stdio: 'ignore' });
  const exited = new Promise((_, fail) =>
    child.once('exit', (code) => fail(new Error(`${kind} server exited (${code}) before it was ready`))),
  );
  const ready = ask(child, setup, 'ready');
  return { child, ...(await Promise.race([ready, exited])) };
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  if (child.connected) child.send('close');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** One wrk run; bounded: killed if it outlives its duration by 15 s. */
function runWrk({ url, bodyFile, authFile, script, seconds, connections, cpu }) {
  return new Promise((ok, fail) => {
    const args = [
      '-t1',
      `-c${connections}`,
      `-d${seconds}s`,
      '--timeout',
      '5s',
      '-s',
      join(here, script),
      url,
      '--',
      bodyFile,
      ...(authFile ? [authFile] : []),
    ];
    const child =
      cpu === undefined ? spawn('wrk', args) : spawn('taskset', ['-c', String(cpu), 'wrk', ...args]);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.on('error', fail);
    child.on('close', () => {
      clearTimeout(timer);
      const m = /WRK_RESULT (\{.*\})/.exec(out);
      if (!m) return fail(new Error(`wrk output not understood:\n${out}`));
      ok(JSON.parse(m[1]));
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpuMicros = (u) => u.user + u.system;

/** Checks that each server answers as the benchmark assumes, so it never measures refusals. */
async function verify(origins, { token, minted }, caPem) {
  const undici = await import('undici');
  const agent = new undici.Agent({ connect: { ca: caPem, servername: 'localhost' } });
  const post = async (origin, path, body, auth) => {
    const res = await undici.request(`${origin}${path}`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
      body: JSON.stringify(body),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    return { status: res.statusCode, body: await res.body.json() };
  };
  try {
    const refused = await post(origins.secured, INFER_PATH, INFER_BODY);
    if (refused.status !== 401)
      throw new Error(`secured infer without a token answered ${refused.status}, not 401`);
    const refusedChat = await post(origins.secured, CHAT_PATH, CHAT_BODY);
    if (refusedChat.status !== 401)
      throw new Error(`secured chat without a token answered ${refusedChat.status}`);
    const a = await post(origins.secured, INFER_PATH, INFER_BODY, token);
    const b = await post(origins.plain, INFER_PATH, INFER_BODY);
    if (a.status !== 200 || b.status !== 200) throw new Error(`infer answered ${a.status} / ${b.status}`);
    const score = (r) => r.body?.outputs?.[0]?.data?.[0];
    if (typeof score(a) !== 'number' || score(a) !== score(b))
      throw new Error('the two servers scored differently');
    // A token without llm:chat: the relay's access rule refuses it (as a model it may not see)
    // before any upstream call.
    const noChat = await post(origins.secured, CHAT_PATH, CHAT_BODY, minted.withoutChatScope);
    if (noChat.status !== 403 && noChat.status !== 404)
      throw new Error(`secured chat without llm:chat answered ${noChat.status}, not 403 or 404`);
    const c = await post(origins.secured, CHAT_PATH, CHAT_BODY, token);
    const m = await post(origins.secured, CHAT_PATH, CHAT_BODY, minted.token);
    const d = await post(origins.plain, CHAT_PATH, CHAT_BODY);
    const e = await post(origins.plain, CHAT_MTLS_PATH, CHAT_BODY);
    if (c.status !== 200 || m.status !== 200 || d.status !== 200 || e.status !== 200) {
      throw new Error(`chat answered ${c.status} / ${m.status} / ${d.status} / ${e.status}`);
    }
    const text = (r) => r.body?.choices?.[0]?.message?.content;
    // The stand-in's answer is a function of the prompt: every path must have reached it.
    const same = [m, d, e].every((r) => text(r) === text(c));
    if (typeof text(c) !== 'string' || text(c).length === 0 || !same) {
      throw new Error('the chat paths got different answers');
    }
    return { score: score(a), completionTokens: c.body.usage?.completion_tokens };
  } finally {
    await agent.close();
  }
}

async function main() {
  const seconds = positiveInt('BENCH_SECONDS', 3);
  const rounds = positiveInt('BENCH_ROUNDS', 3);
  const connections = positiveInt('BENCH_CONNECTIONS', 32);
  const chatConnections = positiveInt('BENCH_CHAT_CONNECTIONS', 16);
  // Pinning needs two cores: servers on one, the load generator on the other.
  // By default the servers get the core that was idlest over the last second and wrk + stand-in
  // the next one: other jobs on a shared machine (other benches pin their servers to CPU 0 too)
  // would otherwise take half of the measured server's core.
  const pin = cpus().length >= 2;
  const busy = pin ? await coreBusy() : undefined;
  const byIdle = busy
    ? busy
        .map((b, i) => [b, i])
        .sort((x, y) => x[0] - y[0])
        .map(([, i]) => i)
    : [0, 1];
  const serverCpu = pin ? cpuIndex('BENCH_SERVER_CPU', byIdle[0]) : undefined;
  const otherCpu = byIdle.find((i) => i !== serverCpu) ?? 1;
  const wrkCpu = pin ? cpuIndex('BENCH_WRK_CPU', otherCpu) : undefined;
  const upstreamCpu = pin ? cpuIndex('BENCH_UPSTREAM_CPU', otherCpu) : undefined;
  if (!existsSync(join(dist, 'sample-model/src/app/app.module.js'))) {
    throw new Error(`${dist} has no compiled sample: run \`npm run build\` first`);
  }

  const { initDevPki } = await lib('dev-pki');
  const { startDevIdp } = await import('@inference-shield/dev-idp');

  const dir = mkdtempSync(join(tmpdir(), 'shield-sample-bench-'));
  const children = [];
  let idp;
  const load = [{ at: 'start', value: loadavg()[0] }];
  try {
    const pki = await initDevPki({ dir: join(dir, 'pki'), clients: ['sample-model'] });
    const apiKeyFile = join(pki.dir, 'llm-api-key');
    writeFileSync(
      apiKeyFile,
      `sk-bench-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}\n`,
      {
        mode: 0o600,
      },
    );
    mkdirSync(join(dir, 'idp'), { mode: 0o700 });
    const keysFile = join(dir, 'idp', 'jwks.json');
    idp = await startDevIdp({ port: 0, pkiDir: pki.dir, keysFile });
    const minter = tokenMinter(idp, keysFile);
    const logFd = openSync('/dev/null', 'w');

    const standin = await startChild(
      'standin',
      { pki: { serverCert: pki.serverCert, serverKey: pki.serverKey, caCert: pki.caCert }, apiKeyFile },
      upstreamCpu,
      logFd,
      children,
    );
    const secured = await startChild(
      'secured',
      {
        env: {
          SHIELD_PKI_DIR: pki.dir,
          SHIELD_MODEL_PORT: '0',
          SHIELD_OIDC_ISSUER: idp.issuer,
          SHIELD_OIDC_AUDIENCE: idp.audience,
          SHIELD_LLM_URL: `https://localhost:${standin.httpsPort}/v1`,
          // No SHIELD_LLM_API_KEY_FILE: keyless, as shipped (certificate exchange at /oauth/token).
          // The relay's per-caller request rate, at its maximum: a benchmark client is no abuser.
          SHIELD_LLM_REQUESTS_PER_MINUTE: '1000000',
        },
      },
      serverCpu,
      logFd,
      children,
    );
    const plain = await startChild(
      'plain',
      {
        llmUrl: `http://127.0.0.1:${standin.httpPort}/v1`,
        llmMtlsUrl: `https://localhost:${standin.httpsPort}/v1`,
        llmTokenUrl: `https://localhost:${standin.httpsPort}/oauth/token`,
        apiKeyFile,
        pki: {
          caCert: pki.caCert,
          clientCert: pki.clientCert('sample-model'),
          clientKey: pki.clientKey('sample-model'),
        },
      },
      serverCpu,
      logFd,
      children,
    );
    const servers = { secured, plain };
    const origins = { secured: `https://127.0.0.1:${secured.port}`, plain: `http://127.0.0.1:${plain.port}` };

    const bodyFiles = { infer: join(dir, 'infer.json'), chat: join(dir, 'chat.json') };
    writeFileSync(bodyFiles.infer, JSON.stringify(INFER_BODY));
    writeFileSync(bodyFiles.chat, JSON.stringify(CHAT_BODY));
    const authFile = join(dir, 'authorization');
    const tokensFile = join(dir, 'tokens');
    // Fresh tokens per round: dev tokens live 300 s, longer runs would otherwise outlive theirs.
    const newToken = async () => {
      const token = await idp.getToken({ scope: SCOPE });
      writeFileSync(authFile, `Bearer ${token}\n`, { mode: 0o600 });
      const pool = Array.from({ length: CHAT_PRINCIPALS }, (_, i) => minter.mint(`bench-client-${i + 1}`));
      writeFileSync(tokensFile, `${pool.join('\n')}\n`, { mode: 0o600 });
      return {
        token,
        minted: {
          token: pool[0],
          withoutChatScope: minter.mint('bench-client-0', 'models:infer'),
        },
      };
    };
    const checked = await verify(origins, await newToken(), readFileSync(pki.caCert));

    const measure = async (scenario, runSeconds) => {
      const server = servers[scenario.server].child;
      const chat = scenario.kind === 'chat';
      const before = await ask(server, 'cpu', 'cpu');
      const upBefore = chat ? await ask(standin.child, 'cpu', 'cpu') : undefined;
      const r = await runWrk({
        url: `${origins[scenario.server]}${scenario.path}`,
        bodyFile: bodyFiles[scenario.body],
        authFile: scenario.server !== 'secured' ? undefined : chat ? tokensFile : authFile,
        script: scenario.server === 'secured' && chat ? 'post-tokens.lua' : 'post-json.lua',
        seconds: runSeconds,
        connections: chat ? chatConnections : connections,
        cpu: wrkCpu,
      });
      const after = await ask(server, 'cpu', 'cpu');
      const upAfter = chat ? await ask(standin.child, 'cpu', 'cpu') : undefined;
      const errors = r.connectErrors + r.readErrors + r.writeErrors + r.timeouts + r.non2xx;
      if (errors > 0 || r.requests === 0) {
        throw new Error(
          `${scenario.id}: ${r.requests} requests, ${r.non2xx} non-2xx, ${errors} errors in all`,
        );
      }
      return {
        rps: r.requests / (r.durationUs / 1e6),
        requests: r.requests,
        p50Ms: r.p50Us / 1000,
        p99Ms: r.p99Us / 1000,
        serverCpuUs: (cpuMicros(after) - cpuMicros(before)) / r.requests,
        // Share of one core the server used: well under 1 means it was not the bottleneck alone
        // (waiting on its model thread or the upstream, or its core taken by other work).
        serverBusy: (cpuMicros(after) - cpuMicros(before)) / r.durationUs,
        ...(chat ? { upstreamCpuUs: (cpuMicros(upAfter) - cpuMicros(upBefore)) / r.requests } : {}),
      };
    };

    // Warm-up: JIT, TLS sessions, connection pools, the guard's verified-token cache.
    for (const s of SCENARIOS) await measure(s, 1);
    const runs = Object.fromEntries(SCENARIOS.map((s) => [s.id, []]));
    for (let round = 0; round < rounds; round++) {
      await newToken();
      const order = round % 2 === 0 ? SCENARIOS : [...SCENARIOS].reverse();
      for (const s of order) runs[s.id].push(await measure(s, seconds));
      load.push({ at: `round ${round + 1}`, value: loadavg()[0] });
      console.error(`round ${round + 1}/${rounds} done, load average ${loadavg()[0].toFixed(2)}`);
    }
    const stats = await ask(standin.child, 'stats', 'stats');

    const summary = {};
    for (const s of SCENARIOS) {
      const r = runs[s.id];
      const pick = (k) => r.map((x) => x[k]);
      summary[s.id] = {
        rps: median(pick('rps')),
        rpsMin: Math.min(...pick('rps')),
        rpsMax: Math.max(...pick('rps')),
        p50Ms: median(pick('p50Ms')),
        p99Ms: median(pick('p99Ms')),
        serverCpuUs: median(pick('serverCpuUs')),
        serverBusy: median(pick('serverBusy')),
        ...(s.kind === 'chat' ? { upstreamCpuUs: median(pick('upstreamCpuUs')) } : {}),
      };
    }
    const ratio = (kind) => {
      const sec = summary[`${kind}-secured`];
      const pl = summary[`${kind}-plain`];
      const perRound = runs[`${kind}-secured`].map((x, i) => x.rps / runs[`${kind}-plain`][i].rps);
      return {
        rps: sec.rps / pl.rps,
        rpsPerRoundMin: Math.min(...perRound),
        rpsPerRoundMax: Math.max(...perRound),
        serverCpu: pl.serverCpuUs / sec.serverCpuUs,
        p50: sec.p50Ms / pl.p50Ms,
        p99: sec.p99Ms / pl.p99Ms,
      };
    };
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
      loadAverage1m: load,
      pinning: pin
        ? {
            servers: serverCpu,
            wrk: wrkCpu,
            standin: upstreamCpu,
            coreBusyBefore: busy?.map((b) => Number(b.toFixed(2))),
          }
        : 'none (one CPU)',
      settings: {
        seconds,
        rounds,
        connections,
        chatConnections,
        chatPrincipals: CHAT_PRINCIPALS,
        wrkThreads: 1,
        upstreamPool: UPSTREAM_POOL,
      },
      chatPath: CHAT_PATH_DESIGN,
      checked,
      summary,
      ratios: { inference: ratio('infer'), chat: ratio('chat') },
      // Where the secured chat's extra server CPU goes, in µs per request.
      chatSplitCpuUs: {
        outboundMtls: summary['chat-plain-mtls'].serverCpuUs - summary['chat-plain'].serverCpuUs,
        inboundTlsGuardRelay: summary['chat-secured'].serverCpuUs - summary['chat-plain-mtls'].serverCpuUs,
      },
      standinStats: {
        handshakes: stats.handshakes,
        completions: stats.completions,
        requests: stats.requests,
        tokenRequests: stats.tokenRequests,
        tokensIssued: stats.tokensIssued,
      },
      runs,
    };

    printTable(result);
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
      writeFileSync(out, await formatted(out, readme(result, kept)));
      console.error(`wrote ${out} and ${resultsFile}`);
    }
  } finally {
    await Promise.all(children.map(stopChild));
    if (idp) await idp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Output.

/** The repository's Prettier style, so the written files pass `npm run lint` as they are. */
async function formatted(file, text) {
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...config, filepath: file });
  } catch {
    return text;
  }
}

const n0 = (x) => Math.round(x).toLocaleString('en-US');
const ms = (x) => `${x.toFixed(2)} ms`;
const pct = (x) => `${(x * 100).toFixed(0)} %`;

function rows(r) {
  return SCENARIOS.map((s) => {
    const v = r.summary[s.id];
    const base = r.summary[`${s.kind === 'chat' ? 'chat' : 'infer'}-plain`];
    return [
      LABELS[s.id],
      n0(v.rps),
      `${n0(v.rpsMin)}–${n0(v.rpsMax)}`,
      ms(v.p50Ms),
      ms(v.p99Ms),
      n0(v.serverCpuUs),
      pct(v.serverBusy),
      v === base ? '100 %' : pct(v.rps / base.rps),
    ];
  });
}

function table(header, body) {
  const all = [header, ...body];
  const width = header.map((_, i) => Math.max(...all.map((row) => String(row[i]).length)));
  const line = (row) =>
    `| ${row.map((c, i) => (i === 0 ? String(c).padEnd(width[i]) : String(c).padStart(width[i]))).join(' | ')} |`;
  const sep = `| ${width.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(header), sep, ...body.map(line)].join('\n');
}

const HEADER = [
  'run',
  'req/s (median)',
  'req/s range',
  'p50',
  'p99',
  'server CPU µs/req',
  'server core busy',
  'vs plain',
];

function printTable(r) {
  console.log(table(HEADER, rows(r)));
  const { inference, chat } = r.ratios;
  console.log(
    `secured/plain req/s: inference ${inference.rps.toFixed(2)} (rounds ${inference.rpsPerRoundMin.toFixed(2)}–${inference.rpsPerRoundMax.toFixed(2)}), ` +
      `chat ${chat.rps.toFixed(2)} (rounds ${chat.rpsPerRoundMin.toFixed(2)}–${chat.rpsPerRoundMax.toFixed(2)}); ` +
      `by server CPU: inference ${inference.serverCpu.toFixed(2)}, chat ${chat.serverCpu.toFixed(2)}`,
  );
  console.log(
    `secured chat's extra server CPU per request: outbound mTLS client ${n0(r.chatSplitCpuUs.outboundMtls)} µs, ` +
      `inbound TLS + guard + relay (access, budget, caller assertion) ${n0(r.chatSplitCpuUs.inboundTlsGuardRelay)} µs`,
  );
  console.log(
    `stand-in CPU µs/req: mTLS ${n0(r.summary['chat-secured'].upstreamCpuUs)}, HTTP ${n0(r.summary['chat-plain'].upstreamCpuUs)}; ` +
      `load average (1 min): ${r.loadAverage1m.map((l) => l.value.toFixed(2)).join(' → ')}`,
  );
}

function readme(r, kept) {
  const { inference, chat } = r.ratios;
  const loads = r.loadAverage1m.map((l) => l.value.toFixed(2));
  const history = table(
    [
      'date (UTC)',
      'load avg',
      'infer req/s ratio',
      'infer CPU ratio',
      'chat req/s ratio',
      'chat CPU ratio',
      'secured chat path',
    ],
    kept.map((k) => [
      k.date.slice(0, 16).replace('T', ' '),
      `${Math.min(...k.loadAverage1m.map((l) => l.value)).toFixed(1)}–${Math.max(...k.loadAverage1m.map((l) => l.value)).toFixed(1)}`,
      k.ratios.inference.rps.toFixed(2),
      k.ratios.inference.serverCpu.toFixed(2),
      k.ratios.chat.rps.toFixed(2),
      k.ratios.chat.serverCpu.toFixed(2),
      k.chatPath ?? 'ChatController, API key',
    ]),
  );
  return `<!-- Generated by bench/sample/sample.bench.mjs: edit the script, not this file. -->

# Sample stack benchmark

The whole secured path of the sample model server against the same sample code with the
security taken out, in one run. A benchmark, not a test: it asserts only that every request
succeeded (a refusal or an error fails the run) and that both paths give the same answers.

\`\`\`sh
npm run build && node bench/sample/sample.bench.mjs
# knobs: BENCH_SECONDS (3), BENCH_ROUNDS (3), BENCH_CONNECTIONS (32), BENCH_CHAT_CONNECTIONS (16),
#        BENCH_SERVER_CPU, BENCH_WRK_CPU, BENCH_UPSTREAM_CPU (default: servers on the core idlest
#        just before the run, wrk and stand-in on the next), BENCH_OUT ("-": print only),
#        BENCH_PROFILE (folder for the servers' V8 CPU profiles)
\`\`\`

It takes about a minute and stops everything it started. Everything is on loopback, with a
throw-away dev PKI and dev IdP in a temp folder.

## What runs

| run | server | client → server | server → LLM |
| --- | --- | --- | --- |
| inference, secured | the sample as \`npm start\` runs it: \`createHttpsApp(AppModule.forConfig(config))\` with the options of \`sample-model/src/main.ts\` (TLS 1.3 negotiated, client certificate asked for but optional, identity guard, audit line per request) | HTTPS, \`Authorization: Bearer <dev IdP access token>\`, \`POST ${INFER_PATH}\` | – |
| inference, plain | \`NestFactory.create\` of a module importing \`SampleModelModule.forRoot({})\` only (no \`IdentityModule\`, so the routes' policy decorators are inert metadata), plain HTTP | HTTP, no token, same body | – |
| chat, secured | the same secured server: the sample's \`/v1\` relay (\`LlmRelayModule\` of \`@inference-shield/llm-relay\`: the request checked and bounded, the model looked up in its catalogue, access by scope \`llm:chat\`, a per-principal budget reserved and settled in memory, a signed caller assertion per request, \`UpstreamClient.fetch\`: pinned pool of 16 mTLS connections, keyless: the client certificate exchanged once at the stand-in's \`/oauth/token\` for a short-lived token, refreshed ahead of expiry) | HTTPS, a token per client from a pool of ${r.settings.chatPrincipals}, \`POST ${CHAT_PATH}\` | HTTPS with a client certificate (the stand-in requires it) and the exchanged token |
| chat, plain | plain HTTP, no guard, a **bench-only controller** (\`PlainChatController\` in \`sample.bench.mjs\`): a minimal check of the body (an object with a non-empty \`messages\` array, not streamed), abort on hang-up, one call of the OpenAI SDK with \`maxRetries: 0\` whose \`fetch\` is undici's \`request()\` on a plain \`Agent\` of 16 connections (as the upstream client's lean fetch, minus its checks: the answer read whole and handed over as a minimal \`Response\`-like object, status, headers, \`json()\`, \`text()\`), a static API key set directly, the SDK's answer sent back; **no field bounds, no catalogue, no access rule, no budget, no caller assertion** | HTTP, no token, same body | plain HTTP to a second listener of the stand-in sharing its request handler (same routes, same answers), the API key |
| chat, plain → mTLS (split) | the plain server's second bench-only route (\`${CHAT_MTLS_PATH}\`): the same controller steps, its SDK on \`UpstreamClient.fetch\` of a registry built with the sample's upstream options (\`createUpstreamRegistry\`, keyless certificate exchange), no caller assertion | HTTP, no token, same body | HTTPS with a client certificate and the exchanged token, as the secured run |

So the chat baseline is *not* the sample with \`http:\` upstream (\`@inference-shield/upstream\` refuses
\`http:\` base URLs by design, and the certificate exchange needs the client certificate): it is the
least a relay of a non-streamed chat call does, with the security removed at both hops. The ratio
therefore measures inbound TLS + guard + the relay's checks, budget and caller assertion +
outbound mTLS + the upstream client together; the third chat run splits the outbound hop from the
rest. The sample's relay allows each principal 40 000 tokens a minute (about 30 per request here),
so the secured chat load comes from ${r.settings.chatPrincipals} clients, each reusing its own token (\`bench/sample/post-tokens.lua\`
sends them in turn): access tokens with the dev IdP's header and claims, signed with its key, one
\`sub\` each (the IdP mints about ten a second); all stay in the guard's verified-token cache, as a
single reused token does. \`SHIELD_LLM_REQUESTS_PER_MINUTE\` is set to its maximum (1 000 000) for
the run; everything else is the sample's default configuration.

The inference body is one row of 8 FP32 features (${JSON.stringify(INFER_BODY).length} bytes); the chat body a
one-message prompt with \`max_tokens: 16\` (stand-in \`tokenDelayMs: 0\`, so the "LLM" answers at
once; ${r.checked.completionTokens} completion tokens). Before measuring, the script checks that the secured server answers
\`401\` without a token, that its relay refuses a token without \`llm:chat\`, and that both servers give
the same fraud score and every chat path (the IdP's token, a minted one, both plain routes) the
same completion.

Load: \`wrk\` 4.1, one thread, keep-alive, ${r.settings.connections} connections for inference and ${r.settings.chatConnections} for chat,
POSTing through \`bench/sample/post-json.lua\` (body and \`Authorization\` read once from files;
the secured chat run through \`post-tokens.lua\`, the same with its pool of tokens; latency
percentiles from wrk's own histogram). Secured and plain servers are separate Node
processes pinned with \`taskset\` to CPU ${r.pinning.servers ?? '–'}, \`wrk\` and the stand-in to CPU ${r.pinning.wrk ?? '–'} (by default the servers get
the core that was idlest in the second before the run); the dev IdP is in the parent process and
idle during the runs. One 1 s warm-up per run, then ${r.settings.rounds} rounds of ${r.settings.seconds} s, the
order of the ${SCENARIOS.length} runs reversed every other round; medians are reported. Server CPU per request is
the server process's \`process.cpuUsage()\` (all threads) around each wrk run, divided by the
requests: on a shared machine it moves much less than requests/s, and the CPU ratio is what the
throughput ratio would be on an idle, CPU-bound core. Servers log to \`/dev/null\` (the secured
server's audit line per request is still formatted and written).

## Results

${r.date.slice(0, 10)}, ${r.date.slice(11, 16)} UTC. Machine: 2 vCPU (${r.cpus}), Linux, Node ${r.node}, shared
with other work: load average (1 min) ${loads.join(' → ')} over the run.

${table(HEADER, rows(r))}

- **Inference: secured / plain = ${inference.rps.toFixed(2)} by req/s** (per round ${inference.rpsPerRoundMin.toFixed(2)}–${inference.rpsPerRoundMax.toFixed(2)}),
  **${inference.serverCpu.toFixed(2)} by server CPU per request**; p50 ×${inference.p50.toFixed(2)}, p99 ×${inference.p99.toFixed(2)}.
- **Chat: secured / plain = ${chat.rps.toFixed(2)} by req/s** (per round ${chat.rpsPerRoundMin.toFixed(2)}–${chat.rpsPerRoundMax.toFixed(2)}),
  **${chat.serverCpu.toFixed(2)} by server CPU per request**; p50 ×${chat.p50.toFixed(2)}, p99 ×${chat.p99.toFixed(2)}. Stand-in CPU per request:
  ${n0(r.summary['chat-secured'].upstreamCpuUs)} µs over mTLS, ${n0(r.summary['chat-plain'].upstreamCpuUs)} µs over HTTP.
- Split of the secured chat's extra server CPU per request: outbound mTLS through the upstream
  client ${n0(r.chatSplitCpuUs.outboundMtls)} µs (plain → mTLS run minus plain run), inbound TLS + guard + relay (checks,
  access, budget, caller assertion) ${n0(r.chatSplitCpuUs.inboundTlsGuardRelay)} µs (secured run minus plain → mTLS run). Differences of medians from a shared
  machine: read them as rough, and negative values as noise.
- The stand-in completed ${n0(r.standinStats.handshakes)} TLS handshakes in the whole run (warm-up and checks
  included) for ${n0(r.standinStats.requests)} requests (both servers' and the split route's): pools of 16 reused, plus a
  new connection for each one dropped when wrk stops with requests in flight (the caller's hang-up
  aborts the upstream call). No handshake per request. Its token endpoint issued
  ${n0(r.standinStats.tokensIssued ?? 0)} tokens (${n0(r.standinStats.tokenRequests ?? 0)} requests): one per upstream client at start, then only on refresh.

The stand-in answers in microseconds; a hosted LLM takes hundreds of milliseconds to seconds per
call, next to which the per-request costs above vanish. These figures are the worst case: the
cost of the security layer when the model itself costs next to nothing.

## Runs kept (\`results.json\`, newest last)

Ratios are secured / plain (req/s, and plain CPU per request / secured CPU per request). The last
column is the path of the secured chat run: runs marked \`ChatController, API key\` went through the
sample's former chat controller with a static key and are not comparable with the relay's.

${history}

## Raw figures of the last run

\`\`\`json
${JSON.stringify({ ...r, runs: undefined }, null, 2)}
\`\`\`
`;
}

if (process.argv[2] === '--serve') await serve(process.argv[3]);
else await main();
