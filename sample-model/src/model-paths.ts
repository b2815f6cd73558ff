import { existsSync, statSync } from 'node:fs';
import { dirname, join, parse } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The committed `sample-model/models` folder, found by walking up from this file to the repository
 * root (the folder holding `package.json` and `sample-model/models`). The same code then works from
 * `sample-model/src` (tests, tsx) and from `dist/sample-model/src` (the build). Returns `undefined`
 * when there is none, so the caller decides how to fail.
 */
export function findDefaultModelsDir(from: string | URL = import.meta.url): string | undefined {
  let dir = dirname(typeof from === 'string' && !from.startsWith('file:') ? from : fileURLToPath(from));
  const { root } = parse(dir);
  // Bounded by the depth of the path: each step removes one segment until the filesystem root.
  for (;;) {
    const candidate = join(dir, 'sample-model', 'models');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate) && statSync(candidate).isDirectory()) {
      return candidate;
    }
    if (dir === root) return undefined;
    dir = dirname(dir);
  }
}
