import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vitest/config';

// Tests run against the packages' TypeScript sources, resolved by package name and subpath as the
// packages' `exports` maps them (the build maps the same names to dist/).
const libs = fileURLToPath(new URL('./libs', import.meta.url));
const ENTRIES: Record<string, string> = {
  core: 'index',
  'core/internal': 'internal',
  'dev-pki': 'index',
  https: 'index',
  'https/internal': 'internal',
  identity: 'index',
  'identity/internal': 'internal',
  'identity/passport': 'passport',
  saml: 'index',
  upstream: 'index',
  'upstream/client': 'client',
};
const PREFIX = '@inference-shield/';

function packageSources(): Plugin {
  return {
    name: 'inference-shield-package-sources',
    enforce: 'pre',
    resolveId(source) {
      if (!source.startsWith(PREFIX)) return null;
      const entry = source.slice(PREFIX.length);
      const file = ENTRIES[entry];
      if (file === undefined) return null;
      return `${libs}/${entry.split('/')[0]}/src/${file}.ts`;
    },
  };
}

export default defineConfig({
  plugins: [packageSources()],
  test: {
    include: ['libs/**/*.spec.ts', 'apps/**/*.spec.ts', 'sample-model/**/*.spec.ts', 'test/**/*.spec.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'threads',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
