// Consumer tests: the packages as a user gets them. Builds and packs every publishable workspace
// package, lints each tarball (publint --strict, attw --profile node16), then, in a temporary
// folder outside the repo, installs the tarballs into fresh host apps (test/consumers/apps/*):
// Nest 12 ESM on Express and on Fastify, Nest 11 CommonJS on Express with its Jest e2e test, and a
// plain Node script (ESM and CommonJS) calling the stand-in LLM over mTLS with the openai SDK.
// Tokens come from the dev IdP, certificates from the packed dev PKI's own `shield-pki` bin.
//
// Usage: npm run test:consumers [-- --keep]   (--keep leaves the temp folder for a look)
// Ends with "Consumers: N passed, N failed"; exits 1 on any failure. Every step is time-bounded.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TEMPLATES = join(REPO, 'test/consumers/apps');
const KEEP = process.argv.includes('--keep');
const NODE = process.execPath;
const MINUTE = 60_000;
/** The whole run; a hung step cannot keep CI waiting past this. */
const OVERALL_MS = 20 * MINUTE;
const AUDIENCE = 'https://models.consumer.test';

const started = Date.now();
const results = [];
const children = new Set();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (line) => console.log(`[consumers ${elapsed()}] ${line}`);

function record(name, ok, detail = '') {
  results.push({ name, ok });
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `  (${detail})` : ''}`);
}

/** Runs a command with a deadline; resolves { code, out } (never rejects). The process group is killed on timeout. */
function run(cmd, args, { cwd = REPO, env = {}, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.add(child);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const timer = setTimeout(() => {
      out += `\n[timed out after ${timeoutMs / 1000} s]`;
      killGroup(child);
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: 1, out: `${out}\n${err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: code ?? (signal ? 1 : 0), out });
    });
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

const tail = (text, lines = 40) => text.trim().split('\n').slice(-lines).join('\n');

/**
 * Runs a command as one check: a PASS/FAIL line, and the output's tail on failure. `summary`
 * picks the line of the output worth showing on success (for example Jest's test count).
 */
async function check(name, cmd, args, opts) {
  const { code, out } = await run(cmd, args, opts);
  const shown =
    code === 0 && opts.summary ? (out.split('\n').find((l) => opts.summary.test(l)) ?? '').trim() : '';
  record(name, code === 0, code === 0 ? shown : `exit ${code}`);
  if (code !== 0) console.log(tail(out).replace(/^/gm, '    | '));
  return code === 0;
}

/** A step whose failure stops the run (nothing after it can be checked). */
async function required(name, cmd, args, opts) {
  if (!(await check(name, cmd, args, opts))) await finish();
}

// --- packages ---------------------------------------------------------------------------------

/** Publishable workspace packages: every libs/* package, and any apps/* package not marked private. */
function publishablePackages() {
  const found = [];
  for (const group of ['libs', 'apps']) {
    for (const name of readdirSync(join(REPO, group))) {
      const file = join(REPO, group, name, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (group === 'apps' && pkg.private === true) continue;
      found.push({ dir: join(REPO, group, name), name: pkg.name, version: pkg.version });
    }
  }
  return found;
}

async function pack(pkg, dest) {
  const { code, out } = await run('npm', ['pack', '--silent', '--pack-destination', dest, pkg.dir], {
    timeoutMs: MINUTE,
  });
  const file = out.trim().split('\n').pop()?.trim();
  const ok = code === 0 && file !== undefined && existsSync(join(dest, file));
  record(`pack ${pkg.name}`, ok, ok ? file : tail(out, 10));
  return ok ? join(dest, file) : undefined;
}

// --- host apps ----------------------------------------------------------------------------------

/**
 * Copies a template and points its `"packed"` dependencies at the tarballs. The packages' own
 * dependencies on each other (`@inference-shield/core` ...) go in `overrides`, so npm takes them
 * from the tarballs too and never asks the registry for an @inference-shield name.
 */
function prepareApp(name, root, tarballs) {
  const dir = join(root, name);
  cpSync(join(TEMPLATES, name), dir, { recursive: true });
  const file = join(dir, 'package.json');
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  for (const field of ['dependencies', 'devDependencies']) {
    for (const [dep, spec] of Object.entries(pkg[field] ?? {})) {
      if (spec !== 'packed') continue;
      if (!tarballs.has(dep)) throw new Error(`${name}: no tarball for ${dep}`);
      pkg[field][dep] = `file:${tarballs.get(dep)}`;
    }
  }
  const direct = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})]);
  pkg.overrides = Object.fromEntries(
    [...tarballs].filter(([dep]) => !direct.has(dep)).map(([dep, tgz]) => [dep, `file:${tgz}`]),
  );
  writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
  return dir;
}

async function install(name, dir) {
  return check(
    `${name}: npm install`,
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
    { cwd: dir, timeoutMs: 6 * MINUTE },
  );
}

/** Starts `node dist/main.js` and waits for its "listening on https://..." line. */
function startApp(dir, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, ['dist/main.js'], {
      cwd: dir,
      env: { ...process.env, ...env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    const fail = (why) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${why}\n${tail(out, 30)}`));
    };
    const timer = setTimeout(() => fail('no "listening on" line within 30 s'), 30_000);
    const onData = (chunk) => {
      out += chunk;
      const m = /listening on https:\/\/[^:\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          port: Number(m[1]),
          stop: () =>
            new Promise((done) => {
              const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
              child.once('exit', () => (clearTimeout(kill), children.delete(child), done()));
              child.kill('SIGTERM');
            }),
          output: () => out,
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => fail(`exited with ${code} before listening`));
  });
}

/** One HTTPS request to the app (trusting the dev CA only); resolves { status, body }. */
function call(port, ca, method, path, { token, json } = {}) {
  return new Promise((resolve, reject) => {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port,
        method,
        path,
        ca,
        agent: false,
        timeout: 10_000,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Plain HTTP/1.1 to the HTTPS port: everything the server sends before it closes. */
function plaintext(port) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n'),
    );
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (c) => (received += c));
    socket.on('end', () => resolve(received));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
  });
}

/** The behaviour each Nest host app must show, one PASS/FAIL line per property. */
async function checkRunningApp(name, dir, env, ca, tokens) {
  let app;
  try {
    app = await startApp(dir, env);
  } catch (err) {
    record(`${name}: starts and listens`, false, err.message.split('\n')[0]);
    console.log(tail(err.message).replace(/^/gm, '    | '));
    return;
  }
  record(`${name}: starts and listens`, true, `port ${app.port}`);
  const expectThat = async (label, fn) => {
    try {
      const detail = await fn();
      record(`${name}: ${label}`, true, detail);
    } catch (err) {
      record(`${name}: ${label}`, false, err.message);
    }
  };
  const route = '/models/demo/infer';
  await expectThat('scope: 200 with token, 401 without, 403 without the scope', async () => {
    const ok = await call(app.port, ca, 'POST', route, { token: tokens.infer, json: { inputs: [1, 2, 3] } });
    if (ok.status !== 200 || JSON.parse(ok.body).sum !== 6)
      throw new Error(`with token: ${ok.status} ${ok.body}`);
    const none = await call(app.port, ca, 'POST', route, { json: { inputs: [1] } });
    if (none.status !== 401) throw new Error(`without token: ${none.status} ${none.body}`);
    const weak = await call(app.port, ca, 'POST', route, { token: tokens.read, json: { inputs: [1] } });
    if (weak.status !== 403) throw new Error(`without the scope: ${weak.status} ${weak.body}`);
    return '200/401/403';
  });
  await expectThat("host's ConflictException stays 409 with its message", async () => {
    const res = await call(app.port, ca, 'POST', '/models/demo/load', { token: tokens.infer });
    let message;
    try {
      message = JSON.parse(res.body).message;
    } catch {
      /* not JSON: reported below */
    }
    if (res.status !== 409 || message !== 'model already loaded')
      throw new Error(`got ${res.status} ${res.body}`);
    return '409';
  });
  await expectThat('plaintext HTTP to the HTTPS port refused', async () => {
    const answer = await plaintext(app.port);
    if (
      !/^HTTP\/1\.1 400 /.test(answer) ||
      !answer.includes('ERR_HTTP_TO_HTTPS') ||
      answer.includes('"ok"')
    ) {
      throw new Error(`got ${JSON.stringify(answer.slice(0, 200))}`);
    }
    return '400 ERR_HTTP_TO_HTTPS';
  });
  await app.stop();
}

// --- the dev IdP and the stand-in LLM, from this repo's build -------------------------------------

/** The first module of `candidates` that loads and exports `name`. */
async function importExport(name, candidates) {
  const errors = [];
  for (const spec of candidates) {
    try {
      const mod = await import(spec.startsWith('/') ? pathToFileURL(spec).href : spec);
      if (typeof mod[name] === 'function') return mod[name];
      errors.push(`${spec}: no ${name}`);
    } catch (err) {
      errors.push(`${spec}: ${err.message.split('\n')[0]}`);
    }
  }
  throw new Error(`cannot load ${name}: ${errors.join('; ')}`);
}

// --- main ----------------------------------------------------------------------------------------

let root;
let idp;
let standin;

async function cleanup() {
  for (const child of children) killGroup(child);
  await Promise.allSettled([idp?.close(), standin?.close()]);
  if (root && !KEEP) rmSync(root, { recursive: true, force: true });
  else if (root) log(`kept ${root}`);
}

async function finish() {
  await cleanup();
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`\nConsumers: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || passed === 0 ? 1 : 0);
}

const overall = setTimeout(() => {
  record(`whole run within ${OVERALL_MS / MINUTE} min`, false, 'stopped');
  void finish();
}, OVERALL_MS);
overall.unref();

log(`node ${process.version}, npm from PATH`);
await required('build (npm run build)', 'npm', ['run', '-s', 'build'], { timeoutMs: 5 * MINUTE });

root = mkdtempSync(join(tmpdir(), 'shield-consumers-'));
const packs = join(root, 'packs');
mkdirSync(packs);
const tarballs = new Map();
for (const pkg of publishablePackages()) {
  const tgz = await pack(pkg, packs);
  if (tgz) tarballs.set(pkg.name, tgz);
}
log(`packed ${tarballs.size} packages into ${packs}`);

// Packaging lint of every tarball. attw and publint read the tarball only (no install).
const bin = (name) => join(REPO, 'node_modules/.bin', name);
for (const [name, tgz] of tarballs) {
  await check(`publint --strict ${name}`, bin('publint'), ['run', tgz, '--strict'], { timeoutMs: MINUTE });
  await check(
    `attw --profile node16 ${name}`,
    bin('attw'),
    [tgz, '--profile', 'node16', '--format', 'ascii'],
    {
      timeoutMs: 2 * MINUTE,
      env: { NO_COLOR: '1', FORCE_COLOR: '0' },
    },
  );
}

const APPS = ['nest12-esm-express', 'nest12-esm-fastify', 'nest11-cjs-express', 'upstream-node'];
const dirs = {};
for (const name of APPS) dirs[name] = prepareApp(name, root, tarballs);
log(`installing ${APPS.length} host apps in ${root}`);
const installed = Object.fromEntries(
  await Promise.all(APPS.map(async (name) => [name, await install(name, dirs[name])])),
);

// No @inference-shield package may come from the registry: each must be the tarball just packed.
for (const name of APPS.filter((n) => installed[n])) {
  const lock = readFileSync(join(dirs[name], 'package-lock.json'), 'utf8');
  const fromRegistry = /registry\.npmjs\.org\/@inference-shield\//.test(lock);
  record(`${name}: @inference-shield/* installed from the tarballs only`, !fromRegistry);
}

// The dev PKI, made by the packed package's bin in the first app, as a user would: npx shield-pki init.
const pkiDir = join(root, 'pki');
if (installed['nest12-esm-express']) {
  await required(
    'dev PKI: shield-pki init (packed @inference-shield/dev-pki)',
    NODE,
    [
      join(dirs['nest12-esm-express'], 'node_modules/.bin/shield-pki'),
      'init',
      '--dir',
      pkiDir,
      '--client',
      'consumer',
    ],
    { cwd: dirs['nest12-esm-express'], timeoutMs: MINUTE },
  );
} else {
  await finish();
}
const pki = {
  ca: join(pkiDir, 'ca.pem'),
  cert: join(pkiDir, 'localhost.pem'),
  key: join(pkiDir, 'localhost-key.pem'),
  clientCert: join(pkiDir, 'clients/consumer.pem'),
  clientKey: join(pkiDir, 'clients/consumer-key.pem'),
};
const caPem = readFileSync(pki.ca);

// Builds (tsc, as `nest build` does with the tsc builder) in parallel with starting the servers.
const nestApps = APPS.filter((n) => n.startsWith('nest') && installed[n]);
const builds = Promise.all(
  nestApps.map(async (name) => [
    name,
    await check(
      `${name}: tsc build`,
      NODE,
      [
        join(dirs[name], 'node_modules/typescript/bin/tsc'),
        '-p',
        name.includes('cjs') ? 'tsconfig.build.json' : 'tsconfig.json',
      ],
      {
        cwd: dirs[name],
        timeoutMs: 3 * MINUTE,
      },
    ),
  ]),
);

try {
  const startDevIdp = await importExport('startDevIdp', [
    '@inference-shield/dev-idp',
    join(REPO, 'dist/apps/dev-idp/src/index.js'),
  ]);
  idp = await startDevIdp({
    port: 0,
    pkiDir,
    keysFile: join(root, 'idp/jwks.json'),
    clientsFile: join(REPO, 'apps/dev-idp/clients.json'),
    audience: AUDIENCE,
  });
  record('dev IdP starts', true, idp.issuer);
} catch (err) {
  record('dev IdP starts', false, err.message);
}
const llmKey = `sk-consumer-${randomBytes(16).toString('hex')}`;
try {
  const createLlmStandin = await importExport('createLlmStandin', [
    '@inference-shield/llm-standin',
    join(REPO, 'dist/apps/llm-standin/src/llm-standin.server.js'),
  ]);
  standin = await createLlmStandin({ port: 0, cert: pki.cert, key: pki.key, ca: pki.ca, apiKeys: [llmKey] });
  record('stand-in LLM starts (mTLS required)', true, standin.url);
} catch (err) {
  record('stand-in LLM starts (mTLS required)', false, err.message);
}

const built = Object.fromEntries(await builds);

if (idp) {
  // Fresh tokens (5 min lifetime) now that the slow installs are over.
  const tokens = {
    infer: await idp.getToken({ clientId: 'demo-service', scope: 'models:infer' }),
    read: await idp.getToken({ clientId: 'reader', scope: 'models:read' }),
  };
  const appEnv = {
    OIDC_ISSUER: idp.issuer,
    OIDC_AUDIENCE: AUDIENCE,
    OIDC_CA: pki.ca,
    TLS_CERT: pki.cert,
    TLS_KEY: pki.key,
    TLS_CA: pki.ca,
  };
  for (const name of nestApps.filter((n) => built[n])) {
    await checkRunningApp(name, dirs[name], appEnv, caPem, tokens);
  }
  if (built['nest11-cjs-express']) {
    const dir = dirs['nest11-cjs-express'];
    await check(
      'nest11-cjs-express: jest e2e (ts-jest + supertest)',
      NODE,
      [join(dir, 'node_modules/jest/bin/jest.js'), '--config', './test/jest-e2e.json', '--ci', '--runInBand'],
      {
        cwd: dir,
        env: { ...appEnv, TOKEN_INFER: tokens.infer, TOKEN_READ: tokens.read },
        timeoutMs: 3 * MINUTE,
        summary: /^Tests:/,
      },
    );
  }
}

if (installed['upstream-node']) {
  const dir = dirs['upstream-node'];
  record('upstream-node: no @nestjs package installed', !existsSync(join(dir, 'node_modules/@nestjs')));
  if (standin) {
    const env = {
      LLM_BASE_URL: `${standin.url}/v1`,
      LLM_CA: pki.ca,
      CLIENT_CERT: pki.clientCert,
      CLIENT_KEY: pki.clientKey,
      LLM_API_KEY: llmKey,
    };
    await check('upstream-node: ESM script, openai over mTLS', NODE, ['client.mjs'], {
      cwd: dir,
      env,
      timeoutMs: MINUTE,
      summary: /^esm ok/,
    });
    await check('upstream-node: CommonJS script, openai over mTLS', NODE, ['client.cjs'], {
      cwd: dir,
      env,
      timeoutMs: MINUTE,
      summary: /^cjs ok/,
    });
  }
}

await finish();
