import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, initDevPki, type DevPkiInitResult } from '@inference-shield/dev-pki';
import { startDevIdp, type DevIdp } from './dev-idp.server.js';
import { runTokenCommand } from './token.command.js';

const root = mkdtempSync(join(tmpdir(), 'dev-idp-cli-'));
const pkiDir = join(root, 'pki');
let pki: DevPkiInitResult;
let idp: DevIdp;
let closedIssuer: string;

async function run(args: string[], env: Record<string, string | undefined> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runTokenCommand(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env,
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  pki = await initDevPki({ dir: pkiDir });
  idp = await startDevIdp({ port: 0, pkiDir, keysFile: join(root, 'jwks.json') });
  const gone = await startDevIdp({ port: 0, pkiDir, keysFile: join(root, 'jwks.json') });
  closedIssuer = gone.issuer;
  await gone.close();
});

afterAll(async () => {
  await idp.close();
  rmSync(root, { recursive: true, force: true });
});

describe('token CLI (npm run -s token)', () => {
  it('prints only the access token, one line, on stdout', async () => {
    const out = await run(['--scope', 'models:infer llm:chat', '--issuer', idp.issuer, '--pki-dir', pkiDir]);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const token = out.stdout.trim();
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
    expect(decodeJwt(token)).toMatchObject({
      iss: idp.issuer,
      sub: 'demo-service',
      scope: 'models:infer llm:chat',
    });
  });

  it('takes the issuer from SHIELD_IDP_ISSUER, and --client and --resource', async () => {
    const out = await run(
      [
        '--scope',
        'models:read',
        '--client',
        'reader',
        '--resource',
        'https://localhost:8443',
        '--pki-dir',
        pkiDir,
      ],
      { SHIELD_IDP_ISSUER: idp.issuer },
    );
    expect(out.code).toBe(0);
    expect(decodeJwt(out.stdout.trim())).toMatchObject({
      sub: 'reader',
      scope: 'models:read',
      aud: 'https://localhost:8443',
    });
  });

  it('finds the IdP on SHIELD_IDP_PORT and the CA in SHIELD_PKI_DIR (ports moved, as npm start allows)', async () => {
    const out = await run(['--scope', 'models:infer'], {
      SHIELD_IDP_PORT: String(idp.port),
      SHIELD_PKI_DIR: pkiDir,
    });
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(decodeJwt(out.stdout.trim())).toMatchObject({ iss: idp.issuer, scope: 'models:infer' });
  });

  it('prefers --issuer and SHIELD_IDP_ISSUER over SHIELD_IDP_PORT', async () => {
    const out = await run(['--scope', 'models:infer', '--pki-dir', pkiDir], {
      SHIELD_IDP_ISSUER: idp.issuer,
      SHIELD_IDP_PORT: new URL(closedIssuer).port,
    });
    expect(out.code).toBe(0);
    expect(decodeJwt(out.stdout.trim()).iss).toBe(idp.issuer);
  });

  it.each([['0'], ['65536'], ['84x3'], ['-1']])(
    'exits 2 on SHIELD_IDP_PORT=%s, naming the variable, with nothing on stdout',
    async (port) => {
      const out = await run(['--scope', 'models:infer', '--pki-dir', pkiDir], { SHIELD_IDP_PORT: port });
      expect(out).toMatchObject({ code: 2, stdout: '' });
      expect(out.stderr).toContain('SHIELD_IDP_PORT must be a port number');
    },
  );

  it('gets a certificate-bound token for an mTLS client with --cert/--key', async () => {
    const cert = pki.clientCert('demo');
    const out = await run([
      '--scope',
      'models:infer',
      '--client',
      'demo-workload-mtls',
      '--issuer',
      idp.issuer,
      '--pki-dir',
      pkiDir,
      '--cert',
      cert,
      '--key',
      pki.clientKey('demo'),
    ]);
    expect(out.code).toBe(0);
    const thumbprint = createHash('sha256')
      .update(new X509Certificate(readFileSync(cert)).raw)
      .digest('base64url');
    expect(decodeJwt(out.stdout.trim()).cnf).toEqual({ 'x5t#S256': thumbprint });
  });

  it.each([
    ['no --scope', [], 2, /--scope is required/],
    ['an unknown flag', ['--scope', 'x', '--insecure'], 2, /Unknown option '--insecure'/],
    ['--cert without --key', ['--scope', 'x', '--cert', 'c.pem'], 2, /--cert and --key go together/],
    ['an http: issuer', ['--scope', 'x', '--issuer', 'http://localhost:9443'], 2, /must be an https: URL/],
    ['an unknown client', ['--scope', 'x', '--client', 'root'], 2, /no client "root" in the clients file/],
    [
      'a missing dev CA',
      ['--scope', 'x', '--pki-dir', '/nonexistent'],
      1,
      /cannot read the dev CA \/nonexistent\/ca\.pem/,
    ],
  ])('exits non-zero with %s, nothing on stdout', async (_name, args, code, message) => {
    const out = await run(args);
    expect(out.code).toBe(code);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(message);
  });

  it('says the IdP is not running when nothing listens', async () => {
    const out = await run(['--scope', 'models:infer', '--issuer', closedIssuer, '--pki-dir', pkiDir]);
    expect(out).toMatchObject({ code: 1, stdout: '' });
    expect(out.stderr).toBe(
      `token: dev IdP not reachable at ${closedIssuer}; run npm start (or npm run idp)\n`,
    );
  });

  it('reports a refused scope with its OAuth error code', async () => {
    const out = await run(['--scope', 'models:read', '--issuer', idp.issuer, '--pki-dir', pkiDir]);
    expect(out).toMatchObject({ code: 1, stdout: '' });
    expect(out.stderr).toMatch(/invalid_scope/);
    expect(out.stderr).not.toContain('dev-only-demo-service-secret');
  });

  it('refuses an IdP whose certificate the given CA did not issue', async () => {
    const other = await createTestPki(join(root, 'other-pki'));
    const out = await run(['--scope', 'models:infer', '--issuer', idp.issuer, '--pki-dir', other.dir]);
    expect(out).toMatchObject({ code: 1, stdout: '' });
    expect(out.stderr).toMatch(/TLS to https:\/\/localhost:\d+ failed/);
  });
});
