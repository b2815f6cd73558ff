import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, importJWK, SignJWT, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_OLD_KEYS, loadOrCreateKeySet, readKeySet, rotateDevIdpKeys } from './signing-keys.js';

const root = mkdtempSync(join(tmpdir(), 'dev-idp-keys-'));
let n = 0;
const freshFile = (): string => join(root, `case-${n++}`, 'idp', 'jwks.json');

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('dev IdP signing keys', () => {
  it('creates one ES256 key whose kid is its RFC 7638 thumbprint, in a 0600 file inside a 0700 folder', async () => {
    const file = freshFile();
    const { keys } = await loadOrCreateKeySet(file);
    expect(keys).toHaveLength(1);
    const key = keys[0]!;
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(key.kid).toBe(await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x: key.x, y: key.y }));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    // The private key works: what it signs, its public half verifies.
    const jwt = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(await importJWK(key));
    const { d: _d, ...pub } = key;
    await expect(jwtVerify(jwt, await importJWK(pub, 'ES256'))).resolves.toBeTruthy();
  });

  it('keeps the same keys across loads (a restart keeps its kids)', async () => {
    const file = freshFile();
    const first = await loadOrCreateKeySet(file);
    const second = await loadOrCreateKeySet(file);
    expect(second).toEqual(first);
  });

  it('rotation puts a new key first, keeps the previous ones, and drops keys beyond the retention', async () => {
    const file = freshFile();
    const kids = [(await loadOrCreateKeySet(file)).keys[0]!.kid];
    for (let i = 0; i < MAX_OLD_KEYS + 2; i++) {
      const { keys } = await rotateDevIdpKeys(file);
      kids.unshift(keys[0]!.kid);
      expect(keys.map((k) => k.kid)).toEqual(kids.slice(0, Math.min(kids.length, MAX_OLD_KEYS + 1)));
    }
    expect(new Set(kids).size).toBe(kids.length);
    expect(readKeySet(file)?.keys).toHaveLength(MAX_OLD_KEYS + 1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('rotating a missing file creates it with one key', async () => {
    const file = freshFile();
    expect((await rotateDevIdpKeys(file)).keys).toHaveLength(1);
  });

  it('returns undefined for a missing file', () => {
    expect(readKeySet(freshFile())).toBeUndefined();
  });

  it('refuses a keys file other users can read', async () => {
    const file = freshFile();
    await loadOrCreateKeySet(file);
    chmodSync(file, 0o644);
    expect(() => readKeySet(file)).toThrow(/readable by other users.*chmod 600/);
  });

  const valid = {
    kty: 'EC',
    crv: 'P-256',
    x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
    y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
    d: 'jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI',
    kid: 'k1',
    alg: 'ES256',
    use: 'sig',
  };
  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['no keys array', '{"k":[]}', /no "keys" array/],
    ['an empty set', '{"keys":[]}', /0 keys/],
    ['an RSA key', JSON.stringify({ keys: [{ ...valid, kty: 'RSA' }] }), /not an EC P-256 ES256/],
    ['an HS256 alg', JSON.stringify({ keys: [{ ...valid, alg: 'HS256' }] }), /not an EC P-256 ES256/],
    ['a public key only', JSON.stringify({ keys: [{ ...valid, d: undefined }] }), /malformed member/],
    [
      'a kid with a path',
      JSON.stringify({ keys: [{ ...valid, kid: '../../etc/passwd' }] }),
      /malformed member/,
    ],
    ['duplicate kids', JSON.stringify({ keys: [valid, valid] }), /duplicate kid/],
    [
      'too many keys',
      JSON.stringify({ keys: [1, 2, 3, 4].map((i) => ({ ...valid, kid: `k${i}` })) }),
      /4 keys/,
    ],
  ])('refuses a keys file holding %s, naming the file', (_name, content, message) => {
    const file = join(root, `bad-${n++}.json`);
    writeFileSync(file, content, { mode: 0o600 });
    expect(() => readKeySet(file)).toThrow(message);
    expect(() => readKeySet(file)).toThrow(file);
    // Refused, not repaired: the file is left as it was.
    expect(readFileSync(file, 'utf8')).toBe(content);
  });
});
