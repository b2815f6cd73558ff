// After `tsc`, compiled code imports `@shield/<lib>` as a bare specifier. Node resolves bare
// specifiers through `node_modules` folders above the importing file, so we write one tiny
// package per lib under `dist/node_modules/@shield/`, each re-exporting that lib's compiled entry.
// No loader hooks, no path rewriting: plain Node resolution.
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
for (const name of readdirSync(join(root, 'libs'))) {
  const entry = join(dist, 'libs', name, 'src', 'index.js');
  if (!existsSync(entry)) continue;
  const pkg = join(dist, 'node_modules', '@shield', name);
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: `@shield/${name}`, type: 'module', main: 'index.js' }) + '\n',
  );
  writeFileSync(join(pkg, 'index.js'), `export * from '../../../libs/${name}/src/index.js';\n`);
}
