/**
 * `shield-token --dpop-key`: a DPoP-bound token from the real dev IdP (oidc-provider checks the
 * proof and binds the token to the key, `cnf.jkt`), then `--proof-for` signs the proof of each
 * request made with it, the way a DPoP client would (RFC 9449 §4).
 */
import { statSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, decodeJwt, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDevPki } from '@inference-shield/dev-pki';
import { startDevIdp, type DevIdp } from './dev-idp.server.js';
import { runTokenCommand } from './token.command.js';

const root = mkdtempSync(join(tmpdir(), 'dev-idp-dpop-cli-'));
const pkiDir = join(root, 'pki');
const keyFile = join(root, 'dpop.jwk');
let idp: DevIdp;

async function run(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runTokenCommand(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: {},
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  await initDevPki({ dir: pkiDir });
  idp = await startDevIdp({ port: 0, pkiDir, keysFile: join(root, 'jwks.json') });
});

afterAll(async () => {
  await idp.close();
  rmSync(root, { recursive: true, force: true });
});

describe('shield-token --dpop-key', () => {
  let token: string;
  let jkt: string;

  it('creates the key (0600) and prints a token bound to it (cnf.jkt)', async () => {
    const out = await run([
      '--scope',
      'models:infer',
      '--issuer',
      idp.issuer,
      '--pki-dir',
      pkiDir,
      '--dpop-key',
      keyFile,
    ]);
    expect(out.code).toBe(0);
    expect(out.stderr).toContain('created the DPoP key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    token = out.stdout.trim();
    const cnf = decodeJwt(token)['cnf'] as { jkt?: string } | undefined;
    expect(cnf?.jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
    jkt = cnf?.jkt ?? '';
  });

  it('reuses the key on the next run: the same cnf.jkt', async () => {
    const out = await run([
      '--scope',
      'models:infer',
      '--issuer',
      idp.issuer,
      '--pki-dir',
      pkiDir,
      '--dpop-key',
      keyFile,
    ]);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect((decodeJwt(out.stdout.trim())['cnf'] as { jkt?: string }).jkt).toBe(jkt);
  });

  it('--proof-for prints a proof for that request, signed by the bound key, with ath and nonce', async () => {
    const out = await run([
      '--dpop-key',
      keyFile,
      '--proof-for',
      'POST https://localhost:8443/v1/models/demo/infer?stream=true',
      '--token',
      token,
      '--nonce',
      'n-1',
    ]);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    const proof = out.stdout.trim();
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: ['ES256'],
    });
    expect(await calculateJwkThumbprint(protectedHeader.jwk as JWK, 'sha256')).toBe(jkt);
    expect(protectedHeader.jwk).not.toHaveProperty('d');
    expect(payload).toMatchObject({
      htm: 'POST',
      htu: 'https://localhost:8443/v1/models/demo/infer',
      ath: createHash('sha256').update(token).digest('base64url'),
      nonce: 'n-1',
    });
    expect(typeof payload.jti).toBe('string');
  });

  it.each([
    ['no --token', ['--dpop-key', keyFile, '--proof-for', 'GET https://localhost:8443/x'], 2],
    [
      'a malformed --proof-for',
      ['--dpop-key', keyFile, '--proof-for', 'https://localhost:8443/x', '--token', 't'],
      2,
    ],
    [
      'a key file that does not exist',
      ['--dpop-key', join(root, 'none.jwk'), '--proof-for', 'GET https://localhost:8443/x', '--token', 't'],
      1,
    ],
    ['--token without --proof-for', ['--scope', 'models:infer', '--token', 't'], 2],
  ])('refuses %s, printing nothing on stdout', async (_name, args, code) => {
    const out = await run(args as string[]);
    expect(out.code).toBe(code);
    expect(out.stdout).toBe('');
  });
});
