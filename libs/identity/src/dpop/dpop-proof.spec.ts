import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { DpopNonces } from './dpop-nonce.js';
import { resolveDpopOptions } from './dpop-options.resolver.js';
import { accessTokenHash, verifyDpopProof, type DpopRequestFacts } from './dpop-proof.js';

const NOW_MS = 1_800_000_000_000;
const NOW_S = NOW_MS / 1000;
const clock = () => NOW_MS;
const options = resolveDpopOptions({ origin: ['https://api.example', 'https://alt.example:8443'] });
const ACCESS_TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64url');

interface Signer {
  readonly jwk: JWK;
  readonly privateJwk: JWK;
  readonly jkt: string;
  readonly key: KeyObject;
}

let es256: Signer;
let other: Signer;
let rsa: Signer;
let ed: Signer;

async function signer(alg: 'ES256' | 'PS256' | 'EdDSA'): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return {
    jwk,
    privateJwk: await exportJWK(privateKey),
    jkt: await calculateJwkThumbprint(jwk, 'sha256'),
    key: privateKey as unknown as KeyObject,
  };
}

/** Signs header and payload texts byte for byte (so a test can write duplicate members). */
function signRaw(headerText: string, payloadText: string, s: Signer, alg: string): string {
  const input = `${b64(headerText)}.${b64(payloadText)}`;
  let sig: Buffer;
  if (alg === 'ES256')
    sig = cryptoSign('sha256', Buffer.from(input), { key: s.key, dsaEncoding: 'ieee-p1363' });
  else if (alg === 'PS256') {
    sig = cryptoSign('sha256', Buffer.from(input), { key: s.key, padding: 6, saltLength: 32 });
  } else sig = cryptoSign(null, Buffer.from(input), s.key);
  return `${input}.${b64(sig)}`;
}

interface ProofParts {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  signer?: Signer;
  alg?: string;
  headerText?: string;
  payloadText?: string;
}

function proof(p: ProofParts = {}): string {
  const s = p.signer ?? es256;
  const alg = p.alg ?? 'ES256';
  const header = { typ: 'dpop+jwt', alg, jwk: s.jwk, ...p.header };
  const claims = {
    jti: 'jti-1',
    htm: 'POST',
    htu: 'https://api.example/v1/models/m/infer',
    iat: NOW_S,
    ath: accessTokenHash(ACCESS_TOKEN),
    ...p.claims,
  };
  for (const [k, v] of Object.entries(p.header ?? {}))
    if (v === undefined) delete (header as Record<string, unknown>)[k];
  for (const [k, v] of Object.entries(p.claims ?? {}))
    if (v === undefined) delete (claims as Record<string, unknown>)[k];
  return signRaw(p.headerText ?? JSON.stringify(header), p.payloadText ?? JSON.stringify(claims), s, alg);
}

function facts(over: Partial<DpopRequestFacts> = {}): DpopRequestFacts {
  return {
    method: 'POST',
    url: '/v1/models/m/infer',
    accessToken: ACCESS_TOKEN,
    expectedJkt: (over.expectedJkt as string | undefined) ?? es256.jkt,
    ...over,
  };
}

beforeAll(async () => {
  [es256, other, rsa, ed] = await Promise.all([
    signer('ES256'),
    signer('ES256'),
    signer('PS256'),
    signer('EdDSA'),
  ]);
});

describe('verifyDpopProof: accepted proofs', () => {
  const cases: [string, () => { jws: string; request?: Partial<DpopRequestFacts> }][] = [
    ['an ES256 proof for this request', () => ({ jws: proof() })],
    [
      'a PS256 proof',
      () => ({ jws: proof({ signer: rsa, alg: 'PS256' }), request: { expectedJkt: rsa.jkt } }),
    ],
    [
      'an EdDSA proof',
      () => ({ jws: proof({ signer: ed, alg: 'EdDSA' }), request: { expectedJkt: ed.jkt } }),
    ],
    [
      'htu with query and fragment (ignored)',
      () => ({ jws: proof({ claims: { htu: 'https://api.example/v1/models/m/infer?x=1#f' } }) }),
    ],
    [
      'htu with upper-case host and the default port',
      () => ({ jws: proof({ claims: { htu: 'HTTPS://API.EXAMPLE:443/v1/models/m/infer' } }) }),
    ],
    [
      'htu with a percent-encoded unreserved character',
      () => ({ jws: proof({ claims: { htu: 'https://api.example/v1/models/%6D/infer' } }) }),
    ],
    [
      'htu with a dot-segment',
      () => ({ jws: proof({ claims: { htu: 'https://api.example/v1/models/x/../m/infer' } }) }),
    ],
    [
      'the request-target has a query',
      () => ({ jws: proof(), request: { url: '/v1/models/m/infer?stream=true' } }),
    ],
    [
      'the second configured origin',
      () => ({ jws: proof({ claims: { htu: 'https://alt.example:8443/v1/models/m/infer' } }) }),
    ],
    ['iat at the edge of the window', () => ({ jws: proof({ claims: { iat: NOW_S - 60 - 5 } }) })],
    ['iat a little ahead (within tolerance)', () => ({ jws: proof({ claims: { iat: NOW_S + 5 } }) })],
    ['a kid header beside the jwk', () => ({ jws: proof({ header: { kid: 'k1' } }) })],
  ];
  it.each(cases)('%s', async (_name, make) => {
    const { jws, request } = make();
    const result = await verifyDpopProof(jws, facts(request), options, clock);
    expect(result.thumbprint).toBe(request?.expectedJkt ?? es256.jkt);
    expect(result.jti).toBe('jti-1');
  });
});

describe('verifyDpopProof: refused proofs', () => {
  const cases: [string, () => { jws: string; request?: Partial<DpopRequestFacts> }, string][] = [
    ['empty', () => ({ jws: '' }), 'ERR_DPOP_PROOF_INVALID'],
    [
      'over maxProofBytes (refused before parsing)',
      () => ({ jws: 'a'.repeat(4097) }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    ['two segments', () => ({ jws: proof().split('.').slice(0, 2).join('.') }), 'ERR_DPOP_PROOF_INVALID'],
    ['JSON serialization', () => ({ jws: '{"payload":"e30","signatures":[]}' }), 'ERR_DPOP_PROOF_INVALID'],
    ['typ jwt', () => ({ jws: proof({ header: { typ: 'JWT' } }) }), 'ERR_DPOP_PROOF_INVALID'],
    ['typ missing', () => ({ jws: proof({ header: { typ: undefined } }) }), 'ERR_DPOP_PROOF_INVALID'],
    [
      'typ in another case',
      () => ({ jws: proof({ header: { typ: 'DPOP+JWT' } }) }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    [
      'alg none',
      () => ({
        jws: `${b64(JSON.stringify({ typ: 'dpop+jwt', alg: 'none', jwk: es256.jwk }))}.${b64('{}')}.`,
      }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    ['alg HS256', () => ({ jws: proof({ header: { alg: 'HS256' } }) }), 'ERR_DPOP_PROOF_INVALID'],
    [
      'alg not matching the key (ES384 header, P-256 key)',
      () => ({ jws: proof({ header: { alg: 'ES384' } }) }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    ['no jwk', () => ({ jws: proof({ header: { jwk: undefined } }) }), 'ERR_DPOP_PROOF_INVALID'],
    [
      'a private key in the jwk header',
      () => ({ jws: proof({ header: { jwk: es256.privateJwk } }) }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    [
      'a symmetric jwk',
      () => ({ jws: proof({ header: { jwk: { kty: 'oct', k: 'c2VjcmV0' } } }) }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    [
      'a jku header',
      () => ({ jws: proof({ header: { jku: 'https://evil.example/jwks' } }) }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    ['an x5c header', () => ({ jws: proof({ header: { x5c: ['MIIB'] } }) }), 'ERR_DPOP_PROOF_INVALID'],
    ['a crit header', () => ({ jws: proof({ header: { crit: ['exp'] } }) }), 'ERR_DPOP_PROOF_INVALID'],
    [
      'signed by another key than its jwk',
      () => ({ jws: proof({ header: { jwk: other.jwk } }), request: { expectedJkt: other.jkt } }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    ['signature altered', () => ({ jws: `${proof().slice(0, -4)}AAAA` }), 'ERR_DPOP_PROOF_INVALID'],
    [
      'duplicate member in the header',
      () => ({
        jws: proof({
          headerText: `{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":${JSON.stringify(es256.jwk)}}`,
        }),
      }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    [
      'duplicate member in the claims',
      () => ({
        jws: proof({
          payloadText: `{"jti":"a","jti":"b","htm":"POST","htu":"https://api.example/v1/models/m/infer","iat":${NOW_S},"ath":"${accessTokenHash(ACCESS_TOKEN)}"}`,
        }),
      }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    ['claims not an object', () => ({ jws: proof({ payloadText: '[1]' }) }), 'ERR_DPOP_PROOF_INVALID'],
    ['no jti', () => ({ jws: proof({ claims: { jti: undefined } }) }), 'ERR_DPOP_PROOF_INVALID'],
    ['jti too long', () => ({ jws: proof({ claims: { jti: 'j'.repeat(257) } }) }), 'ERR_DPOP_PROOF_INVALID'],
    ['iat a string', () => ({ jws: proof({ claims: { iat: String(NOW_S) } }) }), 'ERR_DPOP_PROOF_INVALID'],
    [
      'iat not an integer',
      () => ({ jws: proof({ claims: { iat: NOW_S + 0.5 } }) }),
      'ERR_DPOP_PROOF_INVALID',
    ],
    ['no ath', () => ({ jws: proof({ claims: { ath: undefined } }) }), 'ERR_DPOP_PROOF_INVALID'],
    ['wrong htm', () => ({ jws: proof({ claims: { htm: 'GET' } }) }), 'ERR_DPOP_PROOF_REQUEST_MISMATCH'],
    [
      'htm in lower case',
      () => ({ jws: proof({ claims: { htm: 'post' } }) }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'htu on another origin',
      () => ({ jws: proof({ claims: { htu: 'https://evil.example/v1/models/m/infer' } }) }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'htu on another port',
      () => ({ jws: proof({ claims: { htu: 'https://api.example:8443/v1/models/m/infer' } }) }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'htu on http:',
      () => ({ jws: proof({ claims: { htu: 'http://api.example/v1/models/m/infer' } }) }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'htu on another path',
      () => ({ jws: proof({ claims: { htu: 'https://api.example/v1/models/other/infer' } }) }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'htu with user info',
      () => ({ jws: proof({ claims: { htu: 'https://u:p@api.example/v1/models/m/infer' } }) }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'htu not a URL',
      () => ({ jws: proof({ claims: { htu: 'not a url' } }) }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'the request-target in absolute form (Host games)',
      () => ({ jws: proof(), request: { url: 'https://api.example/v1/models/m/infer' } }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    [
      'htu for // path that a base URL would read as a host',
      () => ({
        jws: proof({ claims: { htu: 'https://evil.example/x' } }),
        request: { url: '//evil.example/x' },
      }),
      'ERR_DPOP_PROOF_REQUEST_MISMATCH',
    ],
    ['iat too old', () => ({ jws: proof({ claims: { iat: NOW_S - 60 - 6 } }) }), 'ERR_DPOP_PROOF_EXPIRED'],
    ['iat in the future', () => ({ jws: proof({ claims: { iat: NOW_S + 6 } }) }), 'ERR_DPOP_PROOF_EXPIRED'],
    [
      'ath of another token',
      () => ({ jws: proof({ claims: { ath: accessTokenHash('another.token.value') } }) }),
      'ERR_DPOP_BINDING_MISMATCH',
    ],
    [
      'ath of this token, unhashed',
      () => ({ jws: proof({ claims: { ath: ACCESS_TOKEN } }) }),
      'ERR_DPOP_BINDING_MISMATCH',
    ],
    [
      'proof key not the token cnf.jkt',
      () => ({ jws: proof(), request: { expectedJkt: other.jkt } }),
      'ERR_DPOP_BINDING_MISMATCH',
    ],
    [
      'expected jkt malformed',
      () => ({ jws: proof(), request: { expectedJkt: 'short' } }),
      'ERR_DPOP_BINDING_MISMATCH',
    ],
  ];
  it.each(cases)('%s → %s', async (_name, make, code) => {
    const { jws, request } = make();
    await expect(verifyDpopProof(jws, facts(request), options, clock)).rejects.toMatchObject({ code });
  });

  it('never quotes the proof or the token in the error', async () => {
    const jws = proof({ claims: { htm: 'GET' } });
    const err: unknown = await verifyDpopProof(jws, facts(), options, clock).catch((e: unknown) => e);
    const text = `${String(err)} ${JSON.stringify(err)} ${(err as Error).message}`;
    expect(text).not.toContain(jws.slice(0, 20));
    expect(text).not.toContain(ACCESS_TOKEN.slice(0, 20));
  });
});

describe('verifyDpopProof: server nonces', () => {
  const secret = new Uint8Array(32).fill(7);
  const nonces = new DpopNonces(secret, 300_000);
  const current = nonces.current(NOW_MS);
  const previous = nonces.current(NOW_MS - 300_000);
  const stale = nonces.current(NOW_MS - 600_000);

  it.each([
    ['the current nonce', current],
    ['the previous nonce (just rotated)', previous],
  ])('accepts %s', async (_name, nonce) => {
    const result = await verifyDpopProof(proof({ claims: { nonce } }), facts({ nonces }), options, clock);
    expect(result.thumbprint).toBe(es256.jkt);
  });

  it.each([
    ['no nonce', undefined],
    ['a nonce two rotations old', stale],
    ['a nonce of another secret', new DpopNonces(new Uint8Array(32).fill(8), 300_000).current(NOW_MS)],
    ['a made-up nonce', 'x'.repeat(22)],
  ])('refuses %s with ERR_DPOP_NONCE_REQUIRED', async (_name, nonce) => {
    await expect(
      verifyDpopProof(proof({ claims: { nonce } }), facts({ nonces }), options, clock),
    ).rejects.toMatchObject({ code: 'ERR_DPOP_NONCE_REQUIRED' });
  });

  it('replicas with the same secret issue the same nonce; a rotation changes it', () => {
    expect(new DpopNonces(secret, 300_000).current(NOW_MS)).toBe(current);
    expect(previous).not.toBe(current);
    expect(current).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});

describe('accessTokenHash', () => {
  it('is the base64url SHA-256 of the ASCII token (RFC 9449 §4.2)', () => {
    expect(accessTokenHash('abc')).toBe(createHash('sha256').update('abc').digest('base64url'));
  });
});
