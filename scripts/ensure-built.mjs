// Build once if the compiled output is missing, silently on success, so that
// `TOKEN=$(npm run -s token -- --scope ...)` prints only the token.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const marker = new URL('../dist/node_modules/@shield/core/index.js', import.meta.url);
if (!existsSync(marker)) {
  const r = spawnSync('npm', ['run', '-s', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
