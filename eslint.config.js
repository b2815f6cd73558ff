import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// Package boundaries. A package is used through its name and the subpaths its `exports` map
// names, never through a path into its folder (a deep import works in the repo and breaks for a
// user, who installs the packed tarball). `/internal` entries are plumbing shared between our
// own packages: nothing outside libs/ may import them.
const deepImport = {
  regex: '^@inference-shield/[^/]+/(src|dist|lib)(/|$)',
  message: 'Import the package by name or an exported subpath, not a path into it.',
};
const intoAnotherPackage = {
  regex: '^(\\.\\./)+(libs|apps|sample-model)/',
  message: 'Import another package by name (@inference-shield/<name>), not by a path into its folder.',
};
// Nothing in libs/*/src or apps/*/src needs to climb two levels: that leaves src/ (or a folder
// below it) for the package root or beyond. sample-model's specs read ../../models/.
const outOfThisPackage = {
  regex: '^(\\.\\./){2,}',
  message: 'A relative import may not leave its own package: import the other package by name.',
};
const internalEntry = {
  regex: '^@inference-shield/[^/]+/internal$',
  message: 'Internal entries are for the @inference-shield packages themselves, not for applications.',
};

export default tseslint.config(
  { ignores: ['**/dist/**', 'node_modules/**', '.shield/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error', 'warn'] }],
      'no-restricted-imports': ['error', { patterns: [deepImport] }],
    },
  },
  {
    files: ['libs/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [deepImport, intoAnotherPackage, outOfThisPackage] }],
    },
  },
  {
    // A unit spec beside its code may read its package's own test fixtures (libs/<name>/test/),
    // from any depth of src/; nothing else may climb out of src/.
    files: ['libs/**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            deepImport,
            intoAnotherPackage,
            { ...outOfThisPackage, regex: '^(\\.\\./){2,}(?!test/)|^(\\.\\./){3,}' },
          ],
        },
      ],
    },
  },
  {
    // The dev tools are packages of ours too: they may use the /internal entries.
    files: ['apps/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [deepImport, intoAnotherPackage, outOfThisPackage] }],
    },
  },
  {
    files: ['sample-model/**', 'bench/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            deepImport,
            intoAnotherPackage,
            { ...outOfThisPackage, regex: '^(\\.\\./){3,}' },
            internalEntry,
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.spec.ts', 'test/**', 'bench/**', 'scripts/**'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
