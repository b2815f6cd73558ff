import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findDefaultModelsDir } from './model-paths.js';

describe('findDefaultModelsDir', () => {
  const root = mkdtempSync(join(tmpdir(), 'shield-model-paths-'));
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('finds the repository models folder from the sources and from dist/', () => {
    const repo = join(root, 'repo');
    mkdirSync(join(repo, 'sample-model', 'models'), { recursive: true });
    mkdirSync(join(repo, 'sample-model', 'src', 'inference'), { recursive: true });
    mkdirSync(join(repo, 'dist', 'sample-model', 'src', 'inference'), { recursive: true });
    writeFileSync(join(repo, 'package.json'), '{}');
    const expected = join(repo, 'sample-model', 'models');
    const fromSrc = join(repo, 'sample-model', 'src', 'inference', 'registry.ts');
    const fromDist = join(repo, 'dist', 'sample-model', 'src', 'inference', 'registry.js');
    expect(findDefaultModelsDir(pathToFileURL(fromSrc))).toBe(expected);
    expect(findDefaultModelsDir(pathToFileURL(fromDist).href)).toBe(expected);
    expect(findDefaultModelsDir(fromDist)).toBe(expected);
  });

  it('returns undefined when no folder above holds package.json and sample-model/models', () => {
    const lonely = join(root, 'lonely', 'a', 'b');
    mkdirSync(lonely, { recursive: true });
    expect(findDefaultModelsDir(join(lonely, 'x.js'))).toBeUndefined();
  });

  it('finds this repository’s committed models from its own location', () => {
    expect(findDefaultModelsDir()).toMatch(/sample-model[/\\]models$/);
  });
});
