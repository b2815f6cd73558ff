/**
 * Independent review of the node:crypto verification path (commits a2f8e53, a4392a2): the
 * signature stage (`signatureCheckFor`) against WebCrypto, what jose's `jwtVerify` used to run on;
 * `TokenVerifier` against jose's `jwtVerify` with the options the old path gave it (a differential
 * oracle over claim, header and signature variations); `parseStrictJson` against a plain
 * recursive-descent reference parser written here.
 */
import {
  constants,
  createHmac,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  sign as cryptoSign,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { b64, forgeToken, signInput, testKey, type TestKey } from '../../test/test-tokens.js';
import { translateJoseError } from './jose-error.mapping.js';
import { signatureCheckFor } from './jws-signature.js';
import { MAX_JSON_DEPTH, parseStrictJson, StrictJsonError } from './strict-json.js';
import { TokenVerifier } from './token-verifier.js';
import { resolveTokenVerifierOptions } from './token-verifier-options.js';

const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;

function toBytes(value: bigint, length: number): Buffer {
  return Buffer.from(value.toString(16).padStart(length * 2, '0'), 'hex');
}
function fromBytes(bytes: Buffer): bigint {
  return BigInt(`0x${bytes.toString('hex') || '0'}`);
}

/** A copy of `bytes` with one bit of byte `at` changed. */
function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return copy;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isShieldError(err) ? err.code : `not a ShieldError: ${String(err)}`;
  }
}

const INPUT = Buffer.from('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9', 'latin1');

describe('signatureCheckFor: a key of the wrong type is ERR_TOKEN_KEY_UNUSABLE, never a check', () => {
  const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
  const rsaPrivate = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
  const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey;
  const k256 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
  const ed25519 = generateKeyPairSync('ed25519').publicKey;
  const ed448 = generateKeyPairSync('ed448').publicKey;
  const x25519 = generateKeyPairSync('x25519').publicKey;
  const secret = new Uint8Array(32).fill(7);
  const secretObject = createSecretKey(Buffer.from(secret));
  const cases: Array<[string, string, KeyObject | Uint8Array]> = [
    ['RS256', 'an EC key', p256],
    ['RS256', 'an RSA key under 2048 bits', rsa1024],
    ['PS256', 'an RSA key under 2048 bits', rsa1024],
    ['RS256', 'a private key', rsaPrivate],
    ['RS256', 'a shared secret (HS→RS)', secret],
    ['RS256', 'a secret KeyObject', secretObject],
    ['ES256', 'a P-384 key', p384],
    ['ES256', 'a secp256k1 key', k256],
    ['ES384', 'a P-256 key', p256],
    ['ES512', 'a P-384 key', p384],
    ['ES256', 'an RSA key', rsa2048],
    ['EdDSA', 'an X25519 key', x25519],
    ['EdDSA', 'an Ed448 key', ed448],
    ['Ed25519', 'an Ed448 key', ed448],
    ['EdDSA', 'a P-256 key', p256],
    ['HS256', 'an RSA public key (RS→HS)', rsa2048],
    ['HS256', 'an empty secret', new Uint8Array(0)],
    ['rs256', 'an RSA key (alg in lower case)', rsa2048],
    ['es256', 'a P-256 key (alg in lower case)', p256],
    ['eddsa', 'an Ed25519 key (alg in lower case)', ed25519],
    ['ED25519', 'an Ed25519 key (alg in upper case)', ed25519],
    ['none', 'an RSA key', rsa2048],
    ['ES256K', 'a secp256k1 key', k256],
  ];
  it.each(cases)('%s with %s', (alg, _what, key) => {
    expect(codeOf(() => signatureCheckFor(alg, key))).toBe('ERR_TOKEN_KEY_UNUSABLE');
  });

  it.each([
    ['RS256', rsa2048],
    ['PS256', rsa2048],
    ['ES256', p256],
    ['ES384', p384],
    ['ES512', p521],
    ['EdDSA', ed25519],
    ['Ed25519', ed25519],
    ['HS256', secret],
  ] as const)('control: %s with its own key type is prepared', (alg, key) => {
    expect(typeof signatureCheckFor(alg, key)).toBe('function');
  });
});

describe('signatureCheckFor: ECDSA against WebCrypto (what jose verified with)', () => {
  const curves = [
    ['ES256', 'P-256', 'sha256', 32, 'SHA-256'],
    ['ES384', 'P-384', 'sha384', 48, 'SHA-384'],
    ['ES512', 'P-521', 'sha512', 66, 'SHA-512'],
  ] as const;

  it.each(curves)(
    '%s: honest, high-S, r/s = 0 or n, every length but 2·%s',
    async (alg, crv, hash, size, webHash) => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: crv });
      const check = signatureCheckFor(alg, publicKey);
      const web = await webcrypto.subtle.importKey(
        'jwk',
        publicKey.export({ format: 'jwk' }),
        { name: 'ECDSA', namedCurve: crv },
        false,
        ['verify'],
      );
      const oracle = async (sig: Buffer): Promise<boolean> =>
        webcrypto.subtle.verify({ name: 'ECDSA', hash: webHash }, web, sig, INPUT);
      const sig = cryptoSign(hash, INPUT, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const r = fromBytes(sig.subarray(0, size));
      const s = fromBytes(sig.subarray(size));
      // The group order, read from a signature's own curve: (n - s) is the high/low twin of s.
      const n = crv === 'P-256' ? P256_N : undefined;
      const variants: Array<[string, Buffer]> = [
        ['honest', sig],
        ['r = 0', Buffer.concat([toBytes(0n, size), sig.subarray(size)])],
        ['s = 0', Buffer.concat([sig.subarray(0, size), toBytes(0n, size)])],
        ['r = s = 0', Buffer.alloc(2 * size)],
        ['empty', Buffer.alloc(0)],
        ['one byte short', sig.subarray(1)],
        ['one byte long (leading 0)', Buffer.concat([Buffer.alloc(1), sig])],
        ['one byte long (trailing 0)', Buffer.concat([sig, Buffer.alloc(1)])],
        ['DER-encoded', cryptoSign(hash, INPUT, { key: privateKey, dsaEncoding: 'der' })],
        ['S and R swapped', Buffer.concat([sig.subarray(size), sig.subarray(0, size)])],
        ['over-long', Buffer.alloc(4096, 1)],
      ];
      if (n !== undefined) {
        variants.push(
          ['high-S twin (n - s)', Buffer.concat([sig.subarray(0, size), toBytes(n - s, size)])],
          ['r = n', Buffer.concat([toBytes(n, size), sig.subarray(size)])],
          ['s = n', Buffer.concat([sig.subarray(0, size), toBytes(n, size)])],
          ['r = s = n (psychic)', Buffer.concat([toBytes(n, size), toBytes(n, size)])],
          ['r + n would overflow: r = n + 1', Buffer.concat([toBytes(n + 1n, size), sig.subarray(size)])],
        );
        expect(r).toBeLessThan(n);
      }
      for (const [what, candidate] of variants) {
        const ours = check(INPUT, candidate);
        expect({ what, ours }).toEqual({ what, ours: await oracle(candidate) });
      }
      expect(check(INPUT, sig)).toBe(true);
      expect(check(Buffer.concat([INPUT, Buffer.from('x')]), sig)).toBe(false);
    },
  );
});

describe('signatureCheckFor: RSA', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const odd = generateKeyPairSync('rsa', { modulusLength: 2056 });

  it.each([
    ['salt 0', 0, false],
    ['salt 20 (SHA-1 length)', 20, false],
    ['salt 31', 31, false],
    ['salt 32 (RFC 7518)', 32, true],
    ['salt 33', 33, false],
    ['maximum salt', constants.RSA_PSS_SALTLEN_MAX_SIGN, false],
  ])('PS256 with %s: accepted only as jose accepted it', async (_what, saltLength, expected) => {
    const sig = cryptoSign('sha256', INPUT, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength,
    });
    const web = await webcrypto.subtle.importKey(
      'jwk',
      publicKey.export({ format: 'jwk' }),
      { name: 'RSA-PSS', hash: 'SHA-256' },
      false,
      ['verify'],
    );
    const oracle = await webcrypto.subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, web, sig, INPUT);
    expect(oracle).toBe(expected);
    expect(signatureCheckFor('PS256', publicKey)(INPUT, sig)).toBe(expected);
  });

  it('PS256 never verifies a PKCS#1 v1.5 signature, RS256 never a PSS one (same key)', () => {
    const v15 = cryptoSign('sha256', INPUT, privateKey);
    const pss = cryptoSign('sha256', INPUT, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    expect(signatureCheckFor('RS256', publicKey)(INPUT, v15)).toBe(true);
    expect(signatureCheckFor('PS256', publicKey)(INPUT, pss)).toBe(true);
    expect(signatureCheckFor('PS256', publicKey)(INPUT, v15)).toBe(false);
    expect(signatureCheckFor('RS256', publicKey)(INPUT, pss)).toBe(false);
    // Another hash of the same family: RS384 with an RS256 signature.
    expect(signatureCheckFor('RS384', publicKey)(INPUT, v15)).toBe(false);
  });

  it('RS256: zero-length, short, long and zero signatures are false, never a throw', () => {
    const sig = cryptoSign('sha256', INPUT, privateKey);
    const check = signatureCheckFor('RS256', publicKey);
    for (const candidate of [
      Buffer.alloc(0),
      sig.subarray(1),
      Buffer.concat([Buffer.alloc(1), sig]),
      Buffer.alloc(256),
      Buffer.alloc(256, 0xff), // >= the modulus
      Buffer.alloc(1 << 16, 1),
    ]) {
      expect(check(INPUT, candidate)).toBe(false);
    }
  });

  it('a modulus that is not a multiple of 8 bits: its signatures are still accepted', () => {
    const sig = cryptoSign('sha256', INPUT, odd.privateKey);
    expect(sig.length).toBe(257);
    expect(signatureCheckFor('RS256', odd.publicKey)(INPUT, sig)).toBe(true);
  });
});

describe('signatureCheckFor: Ed25519 and HMAC', () => {
  it('EdDSA / Ed25519: honest accepted; S + L (malleated), short, long refused as WebCrypto does', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const sig = cryptoSign(null, INPUT, privateKey);
    // S is little-endian in the last 32 bytes.
    const sLe = Buffer.from(sig.subarray(32)).reverse();
    const sPlusL = fromBytes(sLe) + ED25519_L;
    const malleated = Buffer.concat([sig.subarray(0, 32), toBytes(sPlusL, 32).reverse()]);
    const web = await webcrypto.subtle.importKey(
      'jwk',
      publicKey.export({ format: 'jwk' }),
      { name: 'Ed25519' },
      false,
      ['verify'],
    );
    for (const alg of ['EdDSA', 'Ed25519']) {
      const check = signatureCheckFor(alg, publicKey);
      for (const candidate of [
        sig,
        malleated,
        sig.subarray(1),
        Buffer.concat([sig, Buffer.alloc(1)]),
        Buffer.alloc(64),
      ]) {
        const oracle = await webcrypto.subtle.verify({ name: 'Ed25519' }, web, candidate, INPUT);
        expect(check(INPUT, candidate)).toBe(oracle);
      }
      expect(check(INPUT, sig)).toBe(true);
      expect(check(INPUT, malleated)).toBe(false);
    }
  });

  it.each([
    ['HS256', 'sha256', 32],
    ['HS384', 'sha384', 48],
    ['HS512', 'sha512', 64],
  ])('%s: the MAC of its own hash only, whole', (alg, hash, length) => {
    const secret = new Uint8Array(64).fill(3);
    const mac = createHmac(hash, secret).update(INPUT).digest();
    const check = signatureCheckFor(alg, secret);
    expect(mac.length).toBe(length);
    expect(check(INPUT, mac)).toBe(true);
    expect(check(INPUT, mac.subarray(0, length - 1))).toBe(false);
    expect(check(INPUT, mac.subarray(0, 16))).toBe(false);
    expect(check(INPUT, Buffer.alloc(0))).toBe(false);
    expect(check(INPUT, Buffer.concat([mac, Buffer.alloc(1)]))).toBe(false);
    // A longer hash's MAC, truncated to this length, is not this MAC.
    const other = createHmac('sha512', secret).update(INPUT).digest().subarray(0, length);
    expect(check(INPUT, other)).toBe(alg === 'HS512');
  });
});

// ---------------------------------------------------------------------------------------------
// TokenVerifier against jose's jwtVerify (the old path), token by token.

const NOW = Date.UTC(2031, 0, 15, 12, 0, 0);
const SEC = Math.floor(NOW / 1000);
const TOL = 30;
const A = 'https://idp-a.example.test';
const D = 'https://idp-d.example.test'; // requires typ at+jwt
const AUD = 'https://api.example.test';
const ALGS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA', 'Ed25519'];

let rsa: TestKey;
let ps: TestKey;
let ec: TestKey;
let ec384: TestKey;
let ed: TestKey;
let edFully: TestKey;
let rsaD: TestKey;
let jwksA: JWK[];
let verifier: TokenVerifier;

beforeAll(async () => {
  [rsa, ps, ec, ec384, ed, edFully, rsaD] = await Promise.all([
    testKey('RS256', 'a-rsa'),
    testKey('PS256', 'a-ps'),
    testKey('ES256', 'a-ec'),
    testKey('ES384', 'a-ec384'),
    testKey('EdDSA', 'a-ed'),
    testKey('Ed25519', 'a-ed-fully'),
    testKey('RS256', 'd-rsa'),
  ]);
  jwksA = [rsa, ps, ec, ec384, ed, edFully].map((k) => k.publicJwk);
  verifier = await TokenVerifier.create(
    resolveTokenVerifierOptions({
      issuers: [
        {
          issuer: A,
          audience: [AUD, 'https://other.example.test'],
          jwks: { keys: jwksA },
          algorithms: ALGS,
          clockToleranceSeconds: TOL,
        },
        {
          issuer: D,
          audience: AUD,
          jwks: { keys: [rsaD.publicJwk] },
          requireAccessTokenType: true,
          clockToleranceSeconds: TOL,
        },
      ],
      cacheMaxEntries: 0,
    }),
    { now: () => NOW },
  );
});

afterAll(async () => {
  await verifier?.close();
});

async function ours(token: string): Promise<string> {
  try {
    // The synchronous entry point when the key is known: a throw is the refusal.
    await verifier.verify(token);
    return 'accepted';
  } catch (err) {
    return isShieldError(err) ? err.code : `not a ShieldError: ${String(err)}`;
  }
}

/**
 * The old path: jose's jwtVerify with the options the verifier gave it, its errors translated as
 * they were, then the checks jose did not make (`toVerifiedToken`), restated here from the RFCs.
 */
async function oldPath(token: string, issuer: string, keys: JWK[], typ: boolean): Promise<string> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet({ keys }), {
      algorithms: issuer === A ? ALGS : ['RS256', 'PS256', 'ES256', 'EdDSA'],
      issuer,
      audience: issuer === A ? [AUD, 'https://other.example.test'] : [AUD],
      clockTolerance: TOL,
      requiredClaims: ['exp', 'sub', 'iss', 'aud'],
      crit: {},
      ...(typ ? { typ: 'at+jwt' } : {}),
      currentDate: new Date(NOW),
    }));
  } catch (err) {
    return translateJoseError(err).code;
  }
  const { sub, exp, iat, aud, jti } = payload;
  if (typeof sub !== 'string' || sub === '') return 'ERR_TOKEN_CLAIM_INVALID';
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return 'ERR_TOKEN_CLAIM_INVALID';
  if (iat !== undefined) {
    if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'ERR_TOKEN_CLAIM_INVALID';
    if (iat > SEC + TOL) return 'ERR_TOKEN_ISSUED_IN_FUTURE';
  }
  if (!(typeof aud === 'string' || (Array.isArray(aud) && aud.every((a) => typeof a === 'string')))) {
    return 'ERR_TOKEN_CLAIM_INVALID';
  }
  if (jti !== undefined && typeof jti !== 'string') return 'ERR_TOKEN_CLAIM_INVALID';
  return 'accepted';
}

const base = (iss = A): Record<string, unknown> => ({
  iss,
  aud: AUD,
  sub: 'alice',
  iat: SEC - 10,
  exp: SEC + 600,
  jti: 'j',
});

const CLAIM_VARIANTS: Array<[string, Record<string, unknown>]> = [
  ['honest', {}],
  ['exp missing', { exp: undefined }],
  ['exp = now - tol - 1', { exp: SEC - TOL - 1 }],
  ['exp = now - tol', { exp: SEC - TOL }],
  ['exp = now - tol + 1', { exp: SEC - TOL + 1 }],
  ['exp = now', { exp: SEC }],
  ['exp fractional just past', { exp: SEC - TOL + 0.5 }],
  ['exp a string', { exp: String(SEC + 600) }],
  ['exp null', { exp: null }],
  ['exp true', { exp: true }],
  ['exp an array', { exp: [SEC + 600] }],
  ['nbf = now + tol', { nbf: SEC + TOL }],
  ['nbf = now + tol + 1', { nbf: SEC + TOL + 1 }],
  ['nbf = now + tol + 0.5', { nbf: SEC + TOL + 0.5 }],
  ['nbf a string', { nbf: String(SEC) }],
  ['nbf null', { nbf: null }],
  ['iat a string', { iat: String(SEC) }],
  ['iat null', { iat: null }],
  ['iat = now + tol', { iat: SEC + TOL }],
  ['iat = now + tol + 1', { iat: SEC + TOL + 1 }],
  ['iss missing', { iss: undefined }],
  ['aud missing', { aud: undefined }],
  ['sub missing', { sub: undefined }],
  ['sub empty', { sub: '' }],
  ['sub a number', { sub: 7 }],
  ['aud another', { aud: 'https://nope.example.test' }],
  ['aud array with ours', { aud: ['https://nope.example.test', AUD] }],
  ['aud array without ours', { aud: ['https://nope.example.test'] }],
  ['aud empty array', { aud: [] }],
  ['aud array with a number and ours', { aud: [1, AUD] }],
  ['aud array nested', { aud: [[AUD]] }],
  ['aud a number', { aud: 1 }],
  ['aud an object', { aud: { [AUD]: true } }],
  ['aud case differs', { aud: AUD.toUpperCase() }],
  ['jti a number', { jti: 1 }],
  ['several problems: exp missing and aud wrong', { exp: undefined, aud: 'x' }],
  ['several problems: iss missing and sub missing', { iss: undefined, sub: undefined }],
  ['several problems: nbf future and exp past', { nbf: SEC + 3600, exp: SEC - 3600 }],
  ['several problems: iat string and exp past', { iat: 'x', exp: SEC - 3600 }],
];

function claimsWith(extra: Record<string, unknown>, iss = A): Record<string, unknown> {
  const claims = { ...base(iss), ...extra };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return claims;
}

describe('TokenVerifier agrees with jose jwtVerify + the old extra checks', () => {
  it.each(CLAIM_VARIANTS)('claims: %s', async (_what, extra) => {
    for (const key of [rsa, ec, ed]) {
      const token = forgeToken({ alg: key.alg, kid: key.kid }, claimsWith(extra), key);
      const expected = await oldPath(token, A, jwksA, false);
      expect({ alg: key.alg, code: await ours(token) }).toEqual({ alg: key.alg, code: expected });
    }
  });

  it.each([
    ['absent', undefined],
    ['at+jwt', 'at+jwt'],
    ['AT+JWT', 'AT+JWT'],
    ['application/at+jwt', 'application/at+jwt'],
    ['Application/AT+jwt', 'Application/AT+jwt'],
    ['JWT', 'JWT'],
    ['at+jwt with a space', 'at+jwt '],
    ['application/application/at+jwt', 'application/application/at+jwt'],
    ['text/at+jwt', 'text/at+jwt'],
    ['at+JWT; charset=utf-8', 'at+JWT; charset=utf-8'],
    ['empty', ''],
  ])('typ (issuer requiring at+jwt): %s', async (_what, typ) => {
    const header = { alg: 'RS256', kid: rsaD.kid, ...(typ === undefined ? {} : { typ }) };
    const token = forgeToken(header, claimsWith({}, D), rsaD);
    expect(await ours(token)).toBe(await oldPath(token, D, [rsaD.publicJwk], true));
  });

  it.each([
    'rs256',
    'Rs256',
    'RS256 ',
    'none',
    'None',
    'NONE',
    'ES256K',
    'EDDSA',
    'eddsa',
    'ed25519',
    'HS256',
  ])('alg %j: refused, as jose refused it', async (alg) => {
    const token = `${b64({ alg, kid: rsa.kid })}.${b64(claimsWith({}))}.${signInput(
      `${b64({ alg, kid: rsa.kid })}.${b64(claimsWith({}))}`,
      rsa,
    ).toString('base64url')}`;
    const expected = await oldPath(token, A, jwksA, false);
    expect(expected).not.toBe('accepted');
    expect(await ours(token)).not.toBe('accepted');
  });

  it('EdDSA and Ed25519: each key answers for its own alg only, in either order, as jose does', async () => {
    const cases: Array<[TestKey, string]> = [
      [ed, 'EdDSA'],
      [ed, 'Ed25519'],
      [edFully, 'Ed25519'],
      [edFully, 'EdDSA'],
      [ed, 'EdDSA'],
      [edFully, 'Ed25519'],
    ];
    for (const [key, alg] of cases) {
      const token = forgeToken({ alg, kid: key.kid }, claimsWith({}), { alg, privateKey: key.privateKey });
      expect({ kid: key.kid, alg, code: await ours(token) }).toEqual({
        kid: key.kid,
        alg,
        code: await oldPath(token, A, jwksA, false),
      });
    }
  });

  it('one RSA key, after its RS256 use is remembered: PS256 / RS384 under its kid follow jose', async () => {
    const rs = forgeToken({ alg: 'RS256', kid: rsa.kid }, claimsWith({}), rsa);
    expect(await ours(rs)).toBe('accepted');
    for (const alg of ['PS256', 'RS384', 'PS384']) {
      const token = forgeToken({ alg, kid: rsa.kid }, claimsWith({}), { alg, privateKey: rsa.privateKey });
      const expected = await oldPath(token, A, jwksA, false);
      expect({ alg, code: await ours(token) }).toEqual({ alg, code: expected });
      expect(expected).not.toBe('accepted');
    }
  });

  it('an ES256 token naming the P-384 key, an ES384 token naming the P-256 key: refused as jose refused', async () => {
    const es256 = forgeToken({ alg: 'ES256', kid: ec.kid }, claimsWith({}), ec);
    const es384 = forgeToken({ alg: 'ES384', kid: ec384.kid }, claimsWith({}), ec384);
    expect(await ours(es256)).toBe('accepted');
    expect(await ours(es384)).toBe('accepted');
    const crossed = [
      forgeToken({ alg: 'ES256', kid: ec384.kid }, claimsWith({}), {
        alg: 'ES256',
        privateKey: ec384.privateKey,
      }),
      forgeToken({ alg: 'ES384', kid: ec.kid }, claimsWith({}), { alg: 'ES384', privateKey: ec.privateKey }),
    ];
    for (const token of crossed) {
      const expected = await oldPath(token, A, jwksA, false);
      expect(expected).not.toBe('accepted');
      expect(await ours(token)).not.toBe('accepted');
    }
  });

  it('RS→HS: an HS256 token MACed with the RSA public key (PEM and JWK n) is refused', async () => {
    const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const n = Buffer.from(String(rsa.publicJwk.n), 'base64url');
    for (const secret of [pem, n]) {
      const token = forgeToken({ alg: 'HS256', kid: rsa.kid }, claimsWith({}), { alg: 'HS256', secret });
      expect(await ours(token)).toBe('ERR_TOKEN_ALG_NOT_ALLOWED');
      expect(await oldPath(token, A, jwksA, false)).not.toBe('accepted');
    }
  });

  it('signature mutations (every alg): refused as jose refused, never a 500', async () => {
    for (const key of [rsa, ps, ec, ec384, ed, edFully]) {
      const header = b64({ alg: key.alg, kid: key.kid });
      const input = `${header}.${b64(claimsWith({}))}`;
      const sig = signInput(input, key);
      const mutations = [
        Buffer.alloc(1),
        sig.subarray(0, sig.length - 1),
        Buffer.concat([sig, Buffer.alloc(1)]),
        Buffer.concat([Buffer.alloc(1), sig]),
        Buffer.alloc(sig.length),
        flip(sig, 0),
        flip(sig, sig.length - 1),
        flip(sig, sig.length >> 1),
      ];
      for (const m of mutations) {
        const token = `${input}.${m.toString('base64url')}`;
        const code = await ours(token);
        expect({ alg: key.alg, code }).toEqual({ alg: key.alg, code: await oldPath(token, A, jwksA, false) });
        expect(code).toBe('ERR_TOKEN_SIGNATURE_INVALID');
      }
      expect(await ours(`${input}.${sig.toString('base64url')}`)).toBe('accepted');
    }
  });

  it('high-S ES256 (the twin n - s): accepted exactly when jose accepted it', async () => {
    const input = `${b64({ alg: 'ES256', kid: ec.kid })}.${b64(claimsWith({ jti: 'high-s' }))}`;
    const sig = signInput(input, ec);
    const s = fromBytes(sig.subarray(32));
    const twin = Buffer.concat([sig.subarray(0, 32), toBytes(P256_N - s, 32)]);
    const token = `${input}.${twin.toString('base64url')}`;
    expect(await ours(token)).toBe(await oldPath(token, A, jwksA, false));
  });
});

describe('TokenVerifier: a key converted once is the right one for each (alg, kid)', () => {
  it('createPublicKey of the published JWK and the converted key verify the same signatures', () => {
    for (const key of [rsa, ps, ec, ec384, ed, edFully]) {
      const input = Buffer.from(`${b64({ alg: key.alg })}.${b64({})}`);
      const sig = signInput(input.toString(), key);
      const published = createPublicKey({ key: key.publicJwk as never, format: 'jwk' });
      expect(signatureCheckFor(key.alg, published)(input, sig)).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// parseStrictJson against a reference parser.

type RefResult = { ok: true; value: unknown } | { ok: false; kind: 'syntax' | 'duplicate' | 'depth' };

/** RFC 8259, by the book: recursive descent, names compared after unescaping, depth as MAX_JSON_DEPTH. */
function reference(text: string): RefResult {
  let i = 0;
  class Refusal {
    constructor(readonly kind: 'syntax' | 'duplicate' | 'depth') {}
  }
  const fail = (kind: 'syntax' | 'duplicate' | 'depth' = 'syntax'): never => {
    throw new Refusal(kind);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++;
  };
  const str = (): string => {
    if (text[i] !== '"') fail();
    i++;
    let out = '';
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c < 0x20) fail();
      if (c === 0x22) {
        i++;
        return out;
      }
      if (c === 0x5c) {
        const e = text.charAt(i + 1);
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail();
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else if (Object.hasOwn(simple, e)) {
          out += simple[e];
          i += 2;
        } else fail();
        continue;
      }
      out += text.charAt(i);
      i++;
    }
  };
  const num = (): number => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m) return fail();
    i += m[0].length;
    return Number(m[0]);
  };
  const value = (depth: number): unknown => {
    ws();
    const c = text.charAt(i);
    if (c === '{') {
      if (depth + 1 > MAX_JSON_DEPTH) fail('depth');
      i++;
      const obj: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text.charAt(i) === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        const name = str();
        if (seen.has(name)) fail('duplicate');
        seen.add(name);
        ws();
        if (text.charAt(i) !== ':') fail();
        i++;
        Object.defineProperty(obj, name, {
          value: value(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        ws();
        const d = text.charAt(i++);
        if (d === '}') return obj;
        if (d !== ',') fail();
      }
    }
    if (c === '[') {
      if (depth + 1 > MAX_JSON_DEPTH) fail('depth');
      i++;
      const arr: unknown[] = [];
      ws();
      if (text.charAt(i) === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        const d = text.charAt(i++);
        if (d === ']') return arr;
        if (d !== ',') fail();
      }
    }
    if (c === '"') return str();
    if (c === '-' || (c >= '0' && c <= '9')) return num();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail();
  };
  try {
    const v = value(0);
    ws();
    if (i !== text.length) fail();
    return { ok: true, value: v };
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, kind: err.kind };
    throw err;
  }
}

function strict(text: string): RefResult {
  try {
    return { ok: true, value: parseStrictJson(text) };
  } catch (err) {
    if (err instanceof StrictJsonError) return { ok: false, kind: err.kind };
    throw err;
  }
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Same acceptance; same value; a duplicate named as such unless the text is also too deep. */
function expectAgreement(text: string): void {
  const want = reference(text);
  const got = strict(text);
  const label = JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
  expect({ label, ok: got.ok }).toEqual({ label, ok: want.ok });
  if (want.ok && got.ok) {
    // JSON.stringify keeps own `__proto__` members, so it compares the values fully.
    expect(JSON.stringify(got.value)).toBe(JSON.stringify(want.value));
  } else if (!want.ok && !got.ok && want.kind !== 'depth' && got.kind !== 'depth' && isJsonText(text)) {
    // Only for grammatical text: on a text with a repeat *and* a syntax error, the old scanner
    // named whichever came first; both are refusals.
    expect({ label, kind: got.kind }).toEqual({ label, kind: want.kind });
  }
}

const deep = (n: number, open: string, close: string, inner = '1'): string =>
  `${open.repeat(n)}${inner}${close.repeat(n)}`;

const TRICKY: string[] = [
  '{}',
  '[]',
  '{"a":1}',
  '{"a":1,"a":1}',
  '{"a":1,"\\u0061":2}',
  '{"sub":"alice","s\\u0075b":"admin"}',
  '{"a":"x:y","a":2}',
  '{"a:":1,"a":2}',
  '{"a":"\\":","b":"c"}',
  '{"a":"\\\\","a":1}',
  '{"a":"\\\\\\"","b":{"c":":"}}',
  '{"a":"{","b":"}","c":"[:]"}',
  '{"\\u0000":1,"\\u0000":2}',
  '{"\\u0000":1,"":2}',
  '{"\\ud800":1,"\\ud800":2}',
  '{"\\ud800":1,"\\udc00":2}',
  '{"\\uD800\\uDC00":1,"\u{10000}":2}',
  '{"\\uD834\\uDD1E":1,"\\ud834\\udd1e":2}',
  '{"__proto__":1}',
  '{"__proto__":{"admin":true}}',
  '{"__proto__":1,"__proto__":2}',
  '{"__proto__":{},"a":{"__proto__":[]}}',
  '{"constructor":1,"toString":2,"hasOwnProperty":3}',
  '{"1":1,"01":2,"1.0":3}',
  '{"1":1,"1":2}',
  '{"a":{"b":1},"c":{"b":1}}',
  '{"a":{"b":1,"b":2}}',
  '[{"a":1},{"a":2}]',
  '[{"a":1,"a":2}]',
  '{"a":[{"b":1},{"b":2,"b":3}]}',
  '{"exp":1e400}',
  '{"exp":-1e400}',
  '{"exp":1E+2,"nbf":-0,"iat":0.5e-3}',
  '{"exp":01}',
  '{"exp":1.}',
  '{"exp":.5}',
  '{"exp":+1}',
  '{"exp":0x10}',
  '{"exp":NaN}',
  '{"exp":Infinity}',
  '{"a":1,}',
  '{,"a":1}',
  '[1,]',
  '{"a" 1}',
  '{"a"::1}',
  '{"a":1 "b":2}',
  '{a:1}',
  "{'a':1}",
  '{"a":1}}',
  '{"a":1}{"a":1}',
  ' {"a":1} ',
  '\t\n\r{"a":1}\r\n',
  '\u00a0{"a":1}',
  '\ufeff{"a":1}',
  '{"a":"\t"}',
  '{"a":"\u0000"}',
  '{"a":"\u007f"}',
  '{"a":"\\x41"}',
  '{"a":"\\u00"}',
  '{"a":"\\u00zz"}',
  '{"a":"\\\'"}',
  '{"a":"unterminated}',
  '{"a":"x\\',
  '"',
  '',
  ' ',
  'null',
  'true',
  '"a:b"',
  '{"a":tru}',
  '{"a":nulll}',
  '{"a":true,"b":false,"c":null}',
  '{"a":"\u2028\u2029"}',
  '{"\\/":1,"/":2}',
  '{"\\b\\f\\n\\r\\t":1,"\b\f\n\r\t":2}',
  deep(MAX_JSON_DEPTH, '[', ']'),
  deep(MAX_JSON_DEPTH + 1, '[', ']'),
  deep(MAX_JSON_DEPTH - 1, '{"a":', '}', '{}'),
  deep(MAX_JSON_DEPTH, '{"a":', '}', '{}'),
  `{"a":"${'['.repeat(100)}"}`,
  `${']'.repeat(40)}${'['.repeat(40)}`,
  `{"a":${deep(20, '[', ']')},"b":${deep(20, '[', ']')}}`,
];

describe('parseStrictJson agrees with a reference RFC 8259 parser', () => {
  it.each(TRICKY.map((t) => [t.length > 60 ? `${t.slice(0, 60)}…` : t, t]))('%j', (_label, text) => {
    expectAgreement(text);
  });

  it('huge inputs: 100,000 members, a 1 MB string, 10,000 nested brackets: bounded, no throw but StrictJsonError', () => {
    const many = `{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`;
    expectAgreement(many);
    expectAgreement(`${many.slice(0, -1)},"k99999":0}`);
    expectAgreement(`{"a":"${'x'.repeat(1 << 20)}"}`);
    expectAgreement(deep(10_000, '[', ']'));
    expectAgreement('['.repeat(1_000_000));
  });

  it('seeded random mutations of claims-like texts', () => {
    let seed = 0x2f6b7a1;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const pieces = [
      '"',
      '\\',
      ':',
      ',',
      '{',
      '}',
      '[',
      ']',
      'a',
      '1',
      ' ',
      'u',
      '0',
      '"a":1',
      '"a"',
      'e',
      '-',
      '.',
    ];
    const seeds = [
      '{"iss":"https://idp","sub":"alice","aud":["x","y"],"exp":1,"cnf":{"jkt":"a"}}',
      '{"a":{"a":{"a":1}},"b":[{"a":1},{"b":"\\u0061:"}]}',
      '{"s\\u0075b":"x","n":-1.5e3,"t":true,"f":false,"z":null}',
    ];
    let valid = 0;
    for (let round = 0; round < 20_000; round++) {
      let text = seeds[rand(seeds.length)] ?? '';
      for (let edits = 1 + rand(3); edits > 0; edits--) {
        const at = rand(text.length + 1);
        const piece = pieces[rand(pieces.length)] ?? '';
        text =
          rand(3) === 0 ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + piece + text.slice(at);
      }
      if (reference(text).ok) valid++;
      expectAgreement(text);
    }
    // The generator reaches both sides.
    expect(valid).toBeGreaterThan(100);
  });
});

describe('keys published without `alg`, at an issuer allowing several algorithms of their type', () => {
  it('a P-384 key (no `alg`) at an issuer allowing ES256 and ES384 verifies ES384 tokens, as jose did', async () => {
    const p384 = await testKey('ES384', 'p384-no-alg');
    const { alg: _alg, ...jwk } = p384.publicJwk;
    const v = await TokenVerifier.create(
      resolveTokenVerifierOptions({
        issuers: [{ issuer: A, audience: AUD, jwks: { keys: [jwk] }, algorithms: ['ES256', 'ES384'] }],
      }),
      { now: () => NOW },
    );
    try {
      const token = forgeToken({ alg: 'ES384', kid: p384.kid }, claimsWith({}), p384);
      const old = await jwtVerify(token, createLocalJWKSet({ keys: [jwk] }), {
        algorithms: ['ES256', 'ES384'],
        currentDate: new Date(NOW),
      }).then(
        () => 'accepted',
        (err: unknown) => translateJoseError(err).code,
      );
      expect(old).toBe('accepted');
      let code = 'accepted';
      try {
        await v.verify(token);
      } catch (err) {
        code = isShieldError(err) ? err.code : String(err);
      }
      expect(code).toBe('accepted');
    } finally {
      await v.close();
    }
  });
});

describe('keys published without `alg`: the P-256 case', () => {
  it('a P-256 key (no `alg`) at an issuer allowing ES256 and ES384 verifies ES256 tokens; ES384 under it is refused', async () => {
    const p256 = await testKey('ES256', 'p256-no-alg');
    const { alg: _alg, ...jwk } = p256.publicJwk;
    const v = await TokenVerifier.create(
      resolveTokenVerifierOptions({
        issuers: [{ issuer: A, audience: AUD, jwks: { keys: [jwk] }, algorithms: ['ES256', 'ES384'] }],
      }),
      { now: () => NOW },
    );
    const codeOfVerify = async (token: string): Promise<string> =>
      v.verify(token).then(
        () => 'accepted',
        (err: unknown) => (isShieldError(err) ? err.code : String(err)),
      );
    try {
      expect(await codeOfVerify(forgeToken({ alg: 'ES256', kid: p256.kid }, claimsWith({}), p256))).toBe(
        'accepted',
      );
      const crossed = forgeToken({ alg: 'ES384', kid: p256.kid }, claimsWith({}), {
        alg: 'ES384',
        privateKey: p256.privateKey,
      });
      expect(await codeOfVerify(crossed)).toBe('ERR_TOKEN_KEY_NOT_FOUND');
    } finally {
      await v.close();
    }
  });
});

describe('raw claims texts (what JSON.stringify cannot write), against the old path', () => {
  const H = () => ({ alg: 'ES256', kid: ec.kid });
  const text = (extra: string): string =>
    `{"iss":${JSON.stringify(A)},"aud":${JSON.stringify(AUD)},"sub":"alice","iat":${SEC - 10},"exp":${SEC + 600}${extra}}`;
  it.each([
    [
      'exp 1e400 (Infinity)',
      `{"iss":${JSON.stringify(A)},"aud":${JSON.stringify(AUD)},"sub":"alice","exp":1e400}`,
    ],
    ['exp -1e400', `{"iss":${JSON.stringify(A)},"aud":${JSON.stringify(AUD)},"sub":"alice","exp":-1e400}`],
    ['nbf -1e400', text(',"nbf":-1e400')],
    ['nbf 1e400', text(',"nbf":1e400')],
    ['iat 1e400', text(',"iat2":0').replace(`"iat":${SEC - 10}`, '"iat":1e400')],
    ['iat -1e400', text('').replace(`"iat":${SEC - 10}`, '"iat":-1e400')],
    ['exp as 1.7e9 in exponent form', text('').replace(`"exp":${SEC + 600}`, `"exp":${(SEC + 600) / 1e3}e3`)],
    ['__proto__ claim', text(',"__proto__":{"admin":true}')],
    ['escaped names', text('').replace('"sub"', '"s\\u0075b"').replace('"aud"', '"\\u0061ud"')],
    ['escaped issuer value', text('').replace(JSON.stringify(A), JSON.stringify(A).replace('h', '\\u0068'))],
    ['a lone surrogate in sub', text('').replace('"alice"', '"\\ud800"')],
    ['a NUL in sub', text('').replace('"alice"', '"ali\\u0000ce"')],
  ])('%s', async (_what, payload) => {
    const token = `${b64(H())}.${b64(payload)}`;
    const signed = `${token}.${signInput(token, ec).toString('base64url')}`;
    expect(await ours(signed)).toBe(await oldPath(signed, A, jwksA, false));
  });

  it.each([
    ['sub twice', text(',"sub":"admin"')],
    ['sub twice, escaped', text(',"s\\u0075b":"admin"')],
    ['exp twice', text(`,"exp":${SEC + 999999}`)],
    ['iss twice', text(`,"iss":"https://evil.example"`)],
  ])('%s: refused as a duplicate (jose alone kept the last)', async (_what, payload) => {
    const token = `${b64(H())}.${b64(payload)}`;
    const signed = `${token}.${signInput(token, ec).toString('base64url')}`;
    expect(await ours(signed)).toBe('ERR_TOKEN_DUPLICATE_KEY');
  });
});

describe('the connection memo: a remembered header is only ever matched by the same bytes', () => {
  it('same length, one character changed anywhere, or a non-ASCII character: no recall', async () => {
    const v = await TokenVerifier.create(
      resolveTokenVerifierOptions({
        issuers: [{ issuer: A, audience: AUD, jwks: { keys: [ec.publicJwk] }, algorithms: ['ES256'] }],
      }),
      { now: () => NOW },
    );
    try {
      const conn = {};
      const alice = forgeToken({ alg: 'ES256', kid: ec.kid }, claimsWith({ sub: 'alice' }), ec);
      const bobby = forgeToken({ alg: 'ES256', kid: ec.kid }, claimsWith({ sub: 'bobby' }), ec);
      expect(bobby.length).toBe(alice.length);
      // A known key: the answer comes back at once, not as a promise.
      const first = v.verifyAuthorizationNow(conn, `Bearer ${alice}`);
      const known = first instanceof Promise ? await first : first;
      expect(known.subject).toBe('alice');
      const now = v.verifyAuthorizationNow(conn, `Bearer ${alice}`);
      expect(now instanceof Promise).toBe(false);
      const header = `Bearer ${alice}`;
      expect(v.recall(conn, header)?.subject).toBe('alice');
      for (const at of [0, 7, 20, header.length - 2, header.length - 1]) {
        const c = header.charAt(at) === 'A' ? 'B' : 'A';
        expect(v.recall(conn, header.slice(0, at) + c + header.slice(at + 1))).toBeUndefined();
      }
      // 'é' is two UTF-8 bytes: the last character no longer fits, the bytes written still differ.
      expect(v.recall(conn, `${header.slice(0, -2)}é${header.slice(-1)}`)).toBeUndefined();
      expect(v.recall(conn, `${header.slice(0, -1)}\u00ff`)).toBeUndefined();
      // Another token of the same length rewrites the memo in place: the old header is forgotten.
      expect((v.verifyAuthorizationNow(conn, `Bearer ${bobby}`) as { subject: string }).subject).toBe(
        'bobby',
      );
      expect(v.recall(conn, `Bearer ${alice}`)).toBeUndefined();
      expect(v.recall(conn, `Bearer ${bobby}`)?.subject).toBe('bobby');
      // A refused token of the same length leaves the memo as it was.
      const forged = `${bobby.slice(0, -4)}AAAA`;
      expect(codeOf(() => v.verifyAuthorizationNow(conn, `Bearer ${forged}`))).toBe(
        'ERR_TOKEN_SIGNATURE_INVALID',
      );
      expect(v.recall(conn, `Bearer ${forged}`)).toBeUndefined();
      expect(v.recall(conn, `Bearer ${bobby}`)?.subject).toBe('bobby');
      // Another connection has no memo.
      expect(v.recall({}, `Bearer ${bobby}`)).toBeUndefined();
    } finally {
      await v.close();
    }
  });
});
