import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDevPkiCli } from '@inference-shield/dev-pki';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'shield-cli-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runDevPkiCli(argv, { out: (t) => (out += t), err: (t) => (err += t), cwd: root });
  return { code, out, err };
}

describe('pki CLI', () => {
  it('prints usage for --help and exits 0', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: npm run pki -- init/);
    expect(r.err).toBe('');
  });

  it.each([
    ['no command', []],
    ['an unknown command', ['create']],
    ['an unknown flag', ['init', '--force']],
    ['a flag without its value', ['init', '--dir']],
    ['a flag followed by another flag', ['init', '--client', '--dir', 'x']],
    ['a stray positional argument', ['init', 'extra']],
  ])('exits 2 with usage on %s', async (_label, argv) => {
    const r = await run(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Usage:');
    expect(r.out).toBe('');
  });

  it('exits 2 on an invalid client name, naming it, and writes nothing', async () => {
    const dir = join(root, 'bad');
    const r = await run('init', '--dir', dir, '--client', '../evil');
    expect(r.code).toBe(2);
    expect(r.err).toContain('"clients"');
    expect(existsSync(dir)).toBe(false);
  });

  it('creates, then keeps, printing paths only (never key material)', async () => {
    const first = await run('init', '--dir', join(root, 'pki'), '--client', 'demo', '--client=sample-model');
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/created\s+pki\/ca\.pem/);
    expect(first.out).toMatch(/created\s+pki\/clients\/sample-model\.pem/);
    expect(first.out).toContain('client sample-model: spiffe://shield.local/sample-model');
    expect(first.out).not.toMatch(/BEGIN|PRIVATE/);
    expect(existsSync(join(root, 'pki', 'clients', 'demo-key.pem'))).toBe(true);

    const second = await run(
      'init',
      '--dir=' + join(root, 'pki'),
      '--client',
      'demo',
      '--client',
      'sample-model',
    );
    expect(second.code).toBe(0);
    expect(second.out).not.toContain('created');
    expect(second.out.match(/kept/g)).toHaveLength(5);
  });
});

describe('pki CLI: test-pki (bad material on demand)', () => {
  it('writes the good and bad test certificates and lists them, no key material on stdout', async () => {
    const dir = join(root, 'test-set');
    const r = await run('test-pki', '--dir', dir);
    expect(r).toMatchObject({ code: 0, err: '' });
    for (const name of [
      'expired.server',
      'revoked.client',
      'otherCa.client',
      'wrongEku.client',
      'identities.twoSpiffe',
    ]) {
      expect(r.out).toMatch(new RegExp(`\\b${name.replace('.', '\\.')}\\s`));
    }
    for (const file of ['ca.pem', 'ca.crl.pem', 'expired-server.pem', 'revoked-client-key.pem']) {
      expect(existsSync(join(dir, file))).toBe(true);
    }
    expect(r.out).not.toContain('PRIVATE KEY');
  });

  it('refuses to write into a dev PKI folder (its ca.pem would replace the dev CA)', async () => {
    const dir = join(root, 'dev-pki-folder');
    expect((await run('init', '--dir', dir)).code).toBe(0);
    const r = await run('test-pki', '--dir', dir);
    expect(r.code).toBe(2);
    expect(r.err).toContain('holds a dev PKI');
  });

  it.each([
    ['an unknown flag', ['test-pki', '--client', 'x']],
    ['--dir without a value', ['test-pki', '--dir']],
  ])('exits 2 with usage on %s', async (_label, argv) => {
    const r = await run(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Usage:');
  });
});
