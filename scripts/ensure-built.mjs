// Bring the compiled output up to date, silently on success, so that
// `TOKEN=$(npm run -s token -- --scope ...)` prints only the token. The build is incremental
// (`tsc -b`): on an unchanged tree it takes well under a second.
import { spawnSync } from 'node:child_process';

const r = spawnSync('npm', ['run', '-s', 'build'], {
  cwd: new URL('..', import.meta.url).pathname,
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (r.status !== 0) process.exit(r.status ?? 1);
