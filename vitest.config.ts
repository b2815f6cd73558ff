import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run against the packages' TypeScript sources, resolved by package name and subpath as the
// packages' `exports` maps them (the build maps the same names to dist/).
const libs = fileURLToPath(new URL('./libs', import.meta.url));
const SUBPATHS: Record<string, string> = {
  'core/internal': 'internal',
  'identity/passport': 'passport',
  'upstream/client': 'client',
};

export default defineConfig({
  resolve: {
    alias: [
      {
        find: /^@inference-shield\/([a-z-]+)(?:\/([a-z-]+))?$/,
        replacement: '$1\u0000$2',
        customResolver(source: string) {
          const [name, sub] = source.split('\u0000') as [string, string];
          const file = sub ? SUBPATHS[`${name}/${sub}`] : 'index';
          if (file === undefined) return null;
          return `${libs}/${name}/src/${file}.ts`;
        },
      },
    ],
  },
  test: {
    include: ['libs/**/*.spec.ts', 'apps/**/*.spec.ts', 'sample-model/**/*.spec.ts', 'test/**/*.spec.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'threads',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
