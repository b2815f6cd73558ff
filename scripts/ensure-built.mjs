// Bring the compiled output up to date, silently on success, so that
// `TOKEN=$(npm run -s token -- --scope ...)` prints only the token. The build is incremental
// (`tsc -b`): on an unchanged tree it takes well under a second.
//
// `--stack-ports` first checks that the ports `npm start` needs are free, so a busy port stops it
// at once with a message naming the port, not after a full build (20 s and more on a fresh clone).
//
// `--bin <name> [args...]` then runs that bin of one of our workspace packages in this process, with
// the remaining arguments (`npm run -s token -- --scope ...`). npm links a workspace's bins only
// when their files exist at install time, and on a fresh clone dist/ does not exist yet, so
// `shield-token` & co. are not on the PATH of npm scripts there.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const binAt = args.indexOf('--bin');
const bin = binAt === -1 ? undefined : args[binAt + 1];
const binArgs = binAt === -1 ? [] : args.slice(binAt + 2);
const ownArgs = binAt === -1 ? args : args.slice(0, binAt);
if (binAt !== -1 && (bin === undefined || bin === '')) {
  console.error('ensure-built: --bin needs the name of a bin');
  process.exit(2);
}

/** The sample stack's ports, as scripts/start.ts reads them. */
function stackPorts() {
  const ports = [];
  for (const [name, variable, fallback] of [
    ['dev OpenID provider', 'SHIELD_IDP_PORT', 9443],
    ['stand-in hosted LLM', 'SHIELD_LLM_PORT', 9444],
    ['sample model server', 'SHIELD_MODEL_PORT', 8443],
  ]) {
    const raw = process.env[variable];
    const port = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      console.error(`${variable} must be a port number from 1 to 65535, got ${JSON.stringify(raw)}`);
      process.exit(2);
    }
    ports.push({ name, port });
  }
  return ports;
}

function assertPortFree({ name, port }) {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.once('error', (err) =>
      fail(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${port} (${name}) is already in use; stop what holds it or set another port (see README)`
            : `cannot listen on port ${port} (${name}): ${err.code ?? err.message}`,
        ),
      ),
    );
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok()));
  });
}

if (ownArgs.includes('--stack-ports')) {
  try {
    for (const p of stackPorts()) await assertPortFree(p);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}

// tsc reports errors on stdout; they go to stderr here, so stdout stays the command's own.
const r = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
if (r.status !== 0) {
  process.stderr.write(r.stdout ?? '');
  process.exit(r.status ?? 1);
}

// npm marks a workspace's bin files executable when it links them at install time; on a fresh
// clone they did not exist yet, and tsc writes 0644 files, so `npm run pki` / `shield-token`
// would fail with "permission denied". Mark them here.
const bins = new Map();
for (const folder of ['libs', 'apps']) {
  for (const name of readdirSync(join(root, folder))) {
    const manifest = join(root, folder, name, 'package.json');
    if (!existsSync(manifest)) continue;
    const declared = JSON.parse(readFileSync(manifest, 'utf8')).bin;
    for (const [command, file] of Object.entries(
      typeof declared === 'object' && declared !== null ? declared : {},
    )) {
      const path = join(root, folder, name, file);
      bins.set(command, path);
      if (existsSync(path)) chmodSync(path, 0o755);
    }
  }
}

if (bin !== undefined) {
  const file = bins.get(bin);
  if (file === undefined || !existsSync(file)) {
    console.error(`ensure-built: no built bin ${JSON.stringify(bin)}; known: ${[...bins.keys()].join(', ')}`);
    process.exit(2);
  }
  // The bin reads process.argv.slice(2), as when npm runs it through its link.
  process.argv = [process.argv[0] ?? process.execPath, file, ...binArgs];
  await import(pathToFileURL(file).href);
}
