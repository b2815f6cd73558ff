/**
 * Attack: the node:crypto verification path behind the guard (commit a4392a2), on one kept-alive
 * connection. A connection remembers its last verified `Authorization` header and, when the next
 * header has the same length, rewrites the remembered bytes in place. The attacker shares the
 * connection (a gateway's pool) and sends tokens of exactly the same length as a valid one: with
 * one byte of the signature changed, with the payload changed and the signature kept, and with
 * signatures of the wrong length (empty, one byte, 4 KB, DER instead of R || S, high-S). Each must
 * be a 401 with a typed code (never a 500, never the remembered caller), and the caller before and
 * after is still recognised as themselves. Nothing of any token reaches the logs.
 *
 * Real HTTPS on loopback (dev PKI), the real bootstrap (harness `startApp`), inline ES256 key.
 */
import 'reflect-metadata';
import { sign as cryptoSign, KeyObject, type webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, Get, Module } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { IdentityModule, Principal, RequireScopes, type ShieldPrincipal } from '@inference-shield/identity';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose';
import { AUDIENCE, ISSUER, RawConnection, serveOptionalMtls } from './attack-kit.js';
import { CaptureLogger, startApp, type TestApp } from '../../support/harness.js';

@Controller()
class ModelsController {
  @Get('guard')
  @RequireScopes('models:infer')
  guard(@Principal() caller: ShieldPrincipal): { subject: string } {
    return { subject: caller.subject };
  }
}

const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
const dir = mkdtempSync(join(tmpdir(), 'attack-verify-path-'));
const logger = new CaptureLogger();
let pki: TestPki;
let running: TestApp;
let jwk: JWK;
let privateKey: webcrypto.CryptoKey;
const sent: string[] = [];

/** A token of fixed shape: `sub` of 5 characters, fixed iat/exp, so tokens differ only where chosen. */
async function token(sub: string, alg: 'ES256' = 'ES256'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const t = await new SignJWT({ sub, scope: 'models:infer' })
    .setProtectedHeader({ alg, kid: 'k1', typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now - 5)
    .setExpirationTime(now + 600)
    .sign(privateKey);
  sent.push(t);
  return t;
}

function withSignature(t: string, signature: Buffer): string {
  const forged = `${t.slice(0, t.lastIndexOf('.'))}.${signature.toString('base64url')}`;
  sent.push(forged);
  return forged;
}

function signatureOf(t: string): Buffer {
  return Buffer.from(t.slice(t.lastIndexOf('.') + 1), 'base64url');
}

beforeAll(async () => {
  pki = await createTestPki(dir);
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey as webcrypto.CryptoKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  @Module({
    imports: [
      IdentityModule.forRoot({
        oidc: {
          issuers: [
            { issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [jwk] }, algorithms: ['ES256', 'ES384'] },
          ],
        },
      }),
    ],
    controllers: [ModelsController],
  })
  class VerifyPathApp {}
  running = await startApp(VerifyPathApp, { ...serveOptionalMtls(pki), logger });
});

afterAll(async () => {
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function as(
  conn: RawConnection,
  t: string,
): Promise<{ status: number; subject?: unknown; code?: unknown }> {
  const res = await conn.request('GET', '/guard', [`Authorization: Bearer ${t}`]);
  return res.status === 200
    ? { status: 200, subject: res.body['subject'] }
    : { status: res.status, code: res.body['code'] ?? res.body['error'] ?? res.text.slice(0, 80) };
}

describe('one connection, tokens of the same length', () => {
  it('valid, forged, valid again: each is judged on its own bytes', async () => {
    const alice = await token('alice');
    const bobby = await token('bobby');
    expect(bobby.length).toBe(alice.length);
    const sig = signatureOf(bobby);
    const flipped = Buffer.from(sig);
    flipped[20] = (flipped[20] ?? 0) ^ 0x01;
    const bobbyFlipped = withSignature(bobby, flipped);
    // Payload of "admin", signature of alice: same length, never accepted.
    const [h, p] = alice.split('.') as [string, string, string];
    const adminPayload = Buffer.from(p, 'base64url').toString('utf8').replace('"alice"', '"admin"');
    const admin = `${h}.${Buffer.from(adminPayload).toString('base64url')}.${alice.split('.')[2] ?? ''}`;
    sent.push(admin);
    expect(admin.length).toBe(alice.length);
    expect(bobbyFlipped.length).toBe(alice.length);

    const conn = await RawConnection.open(running.port, pki);
    try {
      expect(await as(conn, alice)).toEqual({ status: 200, subject: 'alice' });
      expect(await as(conn, alice)).toEqual({ status: 200, subject: 'alice' }); // the connection's memo
      expect(await as(conn, bobbyFlipped)).toMatchObject({ status: 401 });
      expect(await as(conn, alice)).toEqual({ status: 200, subject: 'alice' });
      expect(await as(conn, bobby)).toEqual({ status: 200, subject: 'bobby' }); // rewritten in place
      expect(await as(conn, admin)).toMatchObject({ status: 401 });
      expect(await as(conn, alice)).toEqual({ status: 200, subject: 'alice' });
      expect(await as(conn, bobby)).toEqual({ status: 200, subject: 'bobby' });
      expect(await as(conn, bobbyFlipped)).toMatchObject({ status: 401 });
      expect(await as(conn, bobby)).toEqual({ status: 200, subject: 'bobby' });
    } finally {
      conn.close();
    }
  });

  it('signatures of the wrong length or form: 401, never 500, never the remembered caller', async () => {
    const alice = await token('alice');
    const sig = signatureOf(alice);
    const der = cryptoSign('sha256', Buffer.from(alice.slice(0, alice.lastIndexOf('.'))), {
      key: KeyObject.from(privateKey),
      dsaEncoding: 'der',
    });
    const forged = [
      withSignature(alice, Buffer.alloc(1)),
      withSignature(alice, sig.subarray(0, 63)),
      withSignature(alice, Buffer.concat([sig, Buffer.alloc(1)])),
      withSignature(alice, Buffer.concat([sig, sig, sig])),
      withSignature(alice, Buffer.alloc(3000, 0x41)),
      withSignature(alice, Buffer.alloc(64)),
      withSignature(
        alice,
        Buffer.concat([Buffer.from(P256_N.toString(16), 'hex'), Buffer.from(P256_N.toString(16), 'hex')]),
      ),
      withSignature(alice, der),
    ];
    const conn = await RawConnection.open(running.port, pki);
    try {
      expect(await as(conn, alice)).toEqual({ status: 200, subject: 'alice' });
      for (const f of forged) {
        const res = await as(conn, f);
        expect(res.status).toBe(401);
      }
      expect(await as(conn, alice)).toEqual({ status: 200, subject: 'alice' });
    } finally {
      conn.close();
    }
  });

  it('the high-S twin of a valid ES256 signature is answered as jose answers it', async () => {
    const alice = await token('alice');
    const sig = signatureOf(alice);
    const s = BigInt(`0x${sig.subarray(32).toString('hex')}`);
    const twin = Buffer.concat([
      sig.subarray(0, 32),
      Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex'),
    ]);
    const highS = withSignature(alice, twin);
    const joseSays = await jwtVerify(highS, createLocalJWKSet({ keys: [jwk] }), {
      algorithms: ['ES256'],
    }).then(
      () => 200,
      () => 401,
    );
    const conn = await RawConnection.open(running.port, pki);
    try {
      expect((await as(conn, highS)).status).toBe(joseSays);
    } finally {
      conn.close();
    }
  });

  it('an ES384 header over the ES256 key, and alg case variants: 401', async () => {
    const alice = await token('alice');
    const [, p, s] = alice.split('.') as [string, string, string];
    const conn = await RawConnection.open(running.port, pki);
    try {
      for (const alg of ['ES384', 'es256', 'ES256 ', 'none', 'HS256']) {
        const header = Buffer.from(JSON.stringify({ alg, kid: 'k1', typ: 'at+jwt' })).toString('base64url');
        const forged = `${header}.${p}.${s}`;
        sent.push(forged);
        expect({ alg, status: (await as(conn, forged)).status }).toEqual({ alg, status: 401 });
      }
      expect(await as(conn, alice)).toEqual({ status: 200, subject: 'alice' });
    } finally {
      conn.close();
    }
  });

  it('nothing of any token sent reached the logs', () => {
    const text = logger.lines.join('\n');
    for (const t of sent) {
      for (const segment of t.split('.')) {
        if (segment.length >= 16) expect(text.includes(segment)).toBe(false);
      }
    }
  });
});
