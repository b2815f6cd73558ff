import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, isShieldErrorCode, type ShieldErrorCode } from '@inference-shield/core';

// docs/errors.md is the operators' table of codes. This spec keeps it from rotting: every code of
// the catalogue must be there with its status and reason, and nothing else may claim to be a code.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = `${root}docs/errors.md`;
const SCRIPT = `${root}scripts/gen-error-table.mjs`;
const TODO = /^TODO\b/;

interface DocRow {
  readonly code: string;
  readonly status: string;
  readonly reason: string;
  readonly when: string;
}

/** Rows of every Markdown table of `doc` whose first cell is a backquoted `ERR_*` code. */
function codeRows(doc: string): DocRow[] {
  const rows: DocRow[] = [];
  for (const line of doc.split('\n')) {
    if (!line.trim().startsWith('|')) continue;
    const cells = line
      .trim()
      .replace(/^\|/, '')
      .replace(/\|$/, '')
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim().replace(/\\\|/g, '|'));
    const code = /^`(ERR_[A-Z0-9_]+)`$/.exec(cells[0] ?? '')?.[1];
    if (code === undefined) continue;
    rows.push({ code, status: cells[1] ?? '', reason: cells[2] ?? '', when: cells[3] ?? '' });
  }
  return rows;
}

/** Every way `doc` disagrees with the catalogue, one line each (empty when it agrees). */
function problems(doc: string): string[] {
  const rows = codeRows(doc);
  const out: string[] = [];
  for (const code of Object.keys(ERROR_CATALOGUE) as ShieldErrorCode[]) {
    const entry = ERROR_CATALOGUE[code];
    const found = rows.filter((r) => r.code === code);
    if (found.length !== 1) {
      out.push(`${code}: ${found.length} rows`);
      continue;
    }
    const [row] = found;
    if (row === undefined) continue;
    if (row.status !== String(entry.status)) out.push(`${code}: status ${row.status}, not ${entry.status}`);
    if (row.reason !== entry.reason) out.push(`${code}: reason differs`);
    if (row.when === '' || TODO.test(row.when)) out.push(`${code}: "when it happens" is empty`);
  }
  for (const row of rows) {
    if (!isShieldErrorCode(row.code)) out.push(`${row.code}: not in the catalogue`);
  }
  return out;
}

describe('docs/errors.md', () => {
  const doc = readFileSync(DOC, 'utf8');

  it('lists every code of the catalogue once, with its status, reason and when it happens', () => {
    expect(problems(doc)).toEqual([]);
    expect(codeRows(doc)).toHaveLength(Object.keys(ERROR_CATALOGUE).length);
  });

  // The check above must be able to fail: a doc that lost a row, or holds a stale one, is caught.
  it.each([
    [
      'a missing code',
      (d: string) => d.replace(/^\| `ERR_TOKEN_EXPIRED` .*\n/m, ''),
      'ERR_TOKEN_EXPIRED: 0 rows',
    ],
    [
      'a wrong status',
      (d: string) => d.replace(/^(\| `ERR_TOKEN_EXPIRED` +\| )401/m, '$1403'),
      'ERR_TOKEN_EXPIRED: status 403, not 401',
    ],
    [
      'a changed reason',
      (d: string) =>
        d.replace(/^(\| `ERR_TOKEN_EXPIRED` +\| 401 +\| )The token has expired\./m, '$1Expired.'),
      'ERR_TOKEN_EXPIRED: reason differs',
    ],
    [
      'an undescribed code',
      (d: string) => d.replace(/^(\| `ERR_TOKEN_EXPIRED` .*\| )[^|]+\|$/m, '$1 TODO |'),
      'ERR_TOKEN_EXPIRED: "when it happens" is empty',
    ],
    [
      'a code that is not in the catalogue',
      (d: string) => `${d}\n| \`ERR_MADE_UP\` | 400 | No. | Never. |\n`,
      'ERR_MADE_UP: not in the catalogue',
    ],
  ])('reports %s', (_name, edit, expected) => {
    const edited = edit(doc);
    expect(edited).not.toBe(doc);
    expect(problems(edited)).toContain(expected);
  });

  it('is what scripts/gen-error-table.mjs generates from the catalogue source', () => {
    // The script parses the TypeScript text; together with the first test this proves its parse
    // equals the real catalogue, so regenerating the doc cannot drop or alter a code.
    const run = spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('prints one table row per code from the script', () => {
    const run = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8', timeout: 20_000 });
    expect(run.status).toBe(0);
    expect(codeRows(run.stdout).map((r) => r.code)).toEqual(Object.keys(ERROR_CATALOGUE));
  });
});
