import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { CallerAssertionSigner } from './caller-assertion.js';

const dir = mkdtempSync(join(tmpdir(), 'assertion-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options = {
  issuer: 'spiffe://shield.local/svc',
  caller: () => undefined,
  ttlSeconds: 30,
  header: 'x-shield-caller-assertion',
};
const audience = 'https://llm.example';
const bigFile = (): string => {
  const path = join(dir, 'big-key.pem');
  writeFileSync(path, Buffer.alloc(64 * 1024 + 1, 0x41));
  return path;
};

describe('CallerAssertionSigner', () => {
  it('turns a failing caller resolver into ERR_CALLER_NOT_ALLOWED, without its message', async () => {
    const signer = await CallerAssertionSigner.create({
      ...options,
      caller: () => {
        throw new RangeError('secret detail from the app');
      },
    });
    let caught: unknown;
    try {
      signer.callerOf({});
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'ERR_CALLER_NOT_ALLOWED' });
    expect(String((caught as Error).message)).not.toContain('secret detail');
  });

  it('signs an assertion the published JWKS verifies', async () => {
    const signer = await CallerAssertionSigner.create(options);
    const jwt = await signer.sign(
      { subject: 'alice', issuer: 'https://idp', scopes: ['a', 'b'], method: 'oidc' },
      audience,
    );
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(signer.jwks() as never), {
      issuer: options.issuer,
      audience,
      typ: 'shield-caller+jwt',
      algorithms: ['ES256'],
    });
    expect(payload).toMatchObject({
      sub: 'alice',
      caller_iss: 'https://idp',
      scope: 'a b',
      caller_method: 'oidc',
    });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(30);
    expect(decodeProtectedHeader(jwt).kid).toBe(signer.jwks().keys[0]?.kid);
    // The JWKS holds the public half only.
    expect(JSON.stringify(signer.jwks())).not.toContain('"d"');
  });

  it('each assertion has its own jti', async () => {
    const signer = await CallerAssertionSigner.create(options);
    const a = await signer.sign({ subject: 'alice' }, audience);
    const b = await signer.sign({ subject: 'alice' }, audience);
    const set = createLocalJWKSet(signer.jwks() as never);
    const [pa, pb] = await Promise.all([jwtVerify(a, set), jwtVerify(b, set)]);
    expect(pa.payload.jti).not.toBe(pb.payload.jti);
  });

  it('another service’s keys do not verify it', async () => {
    const [one, two] = await Promise.all([
      CallerAssertionSigner.create(options),
      CallerAssertionSigner.create(options),
    ]);
    const jwt = await one.sign({ subject: 'alice' }, audience);
    await expect(jwtVerify(jwt, createLocalJWKSet(two.jwks() as never))).rejects.toThrow();
  });

  it.each([
    ['an empty subject', { subject: '' }],
    ['a huge subject', { subject: 'x'.repeat(5000) }],
    ['too many scopes', { subject: 'a', scopes: Array.from({ length: 100 }, (_, i) => `s${i}`) }],
  ])('refuses to assert %s', async (_name, caller) => {
    const signer = await CallerAssertionSigner.create(options);
    await expect(signer.sign(caller, audience)).rejects.toMatchObject({ code: 'ERR_CALLER_NOT_ALLOWED' });
  });

  it('loads a P-256 key file and refuses another curve, naming the file', async () => {
    const good = join(dir, 'p256.pem');
    writeFileSync(
      good,
      generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({
        type: 'pkcs8',
        format: 'pem',
      }),
    );
    const signer = await CallerAssertionSigner.create({ ...options, privateKeyFile: good });
    expect(signer.jwks().keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });

    const bad = join(dir, 'p384.pem');
    writeFileSync(
      bad,
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({
        type: 'pkcs8',
        format: 'pem',
      }),
    );
    await expect(CallerAssertionSigner.create({ ...options, privateKeyFile: bad })).rejects.toThrow(
      /p384\.pem must hold an EC P-256 key/,
    );
    await expect(
      CallerAssertionSigner.create({ ...options, privateKeyFile: join(dir, 'missing.pem') }),
    ).rejects.toThrow(/missing\.pem is unreadable/);
  });

  it.each([
    ['a directory', () => dir, /private key file .* is not a regular file/],
    [
      'over 64 KiB',
      () => bigFile(),
      /private key file .*big-key\.pem is 65537 bytes, more than the 65536 allowed/,
    ],
  ])('a key file that is %s is a TypeError naming the option and the file', async (_case, path, reason) => {
    const err = await CallerAssertionSigner.create({ ...options, privateKeyFile: path() }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/^"callerAssertion\.privateKeyFile": /);
    expect((err as Error).message).toMatch(reason);
  });
});
