import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const libs = fileURLToPath(new URL('./libs', import.meta.url));
const alias = Object.fromEntries(
  readdirSync(libs).map((name) => [`@shield/${name}`, `${libs}/${name}/src/index.ts`]),
);

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['libs/**/*.spec.ts', 'apps/**/*.spec.ts', 'sample-model/**/*.spec.ts', 'test/**/*.spec.ts'],
    pool: 'threads',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
