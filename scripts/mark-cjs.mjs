// Each package builds its CommonJS dialect into dist/cjs. The package itself is "type": "module",
// so Node (and TypeScript) would read those files as ESM: a package.json there says otherwise.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

for (const folder of ['../libs/', '../apps/']) {
  const packages = new URL(folder, import.meta.url).pathname;
  for (const name of readdirSync(packages)) {
    const cjs = join(packages, name, 'dist', 'cjs');
    if (existsSync(cjs)) writeFileSync(join(cjs, 'package.json'), '{ "type": "commonjs" }\n');
  }
}
