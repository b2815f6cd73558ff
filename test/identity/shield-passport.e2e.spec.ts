import { createHmac, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Get, Module } from '@nestjs/common';
import jwt from 'jsonwebtoken';
import {
  IdentityModule,
  LoggerAuditSink,
  Principal,
  RequireScopes,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import { ShieldPassportModule, UsePassport } from '@inference-shield/identity/passport';
import {
  AUDIENCE,
  createSigner,
  ISSUER,
  oidcOptions,
  type Signer,
} from '../../libs/identity/test/identity.fixtures.js';
import { CaptureLogger, startApp, type CallResult, type TestApp } from '../support/harness.js';
import { createPki, optionalMtls, type Pki } from './support/workload-pki.js';

let pki: Pki;
let signer: Signer;
let running: TestApp;
const logger = new CaptureLogger();

@Controller()
class BothPathsController {
  @Get('guard') @RequireScopes('models:infer') viaGuard(@Principal() p: ShieldPrincipal) {
    return p;
  }
  @Get('passport') @UsePassport({ scopes: ['models:infer'] }) viaPassport(@Principal() p: ShieldPrincipal) {
    return p;
  }
  @Get('passport-admin') @UsePassport({ scopes: ['models:admin'] }) admin() {
    return { ok: true };
  }
}

beforeAll(async () => {
  pki = await createPki();
  signer = await createSigner();
  @Module({
    imports: [
      IdentityModule.forRoot({ oidc: oidcOptions(signer), audit: { sink: new LoggerAuditSink() } }),
      ShieldPassportModule,
    ],
    controllers: [BothPathsController],
  })
  class AppModule {}
  // The app's own logger captures everything: Nest's, the audit sink's (the Logger sink), ours.
  running = await startApp(AppModule, { ...optionalMtls(pki), logger });
});

afterAll(async () => {
  await running?.close();
});

const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: AUDIENCE,
  sub: 'alice',
  iat: now(),
  exp: now() + 300,
  scope: 'models:infer',
  ...extra,
});
const header = (extra: Record<string, unknown> = {}) => ({
  alg: 'ES256',
  typ: 'at+jwt',
  kid: 'k1',
  ...extra,
});
const without = (o: Record<string, unknown>, key: string) =>
  Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));

/**
 * The attack table of docs/threat-model.md (access tokens), built by hand. Each row names the code both
 * paths must answer; the status is 401 for all of them.
 */
function attackTable(): [name: string, token: string, code: string][] {
  const good = signer.sign();
  const [gh, gp, gs] = good.split('.') as [string, string, string];
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const pem = signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const hs256 = (key: string | Buffer) => {
    const input = `${b64(JSON.stringify(header({ alg: 'HS256' })))}.${b64(JSON.stringify(claims()))}`;
    return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
  };
  const json = (h: object, c: object) => signer.craft(JSON.stringify(h), JSON.stringify(c));
  return [
    [
      'alg none, signature removed',
      `${b64(JSON.stringify(header({ alg: 'none' })))}.${gp}.`,
      'ERR_TOKEN_MALFORMED',
    ],
    ['alg none with a signature', json(header({ alg: 'none' }), claims()), 'ERR_TOKEN_ALG_NOT_ALLOWED'],
    ['alg NoNe', json(header({ alg: 'NoNe' }), claims()), 'ERR_TOKEN_ALG_NOT_ALLOWED'],
    ['HS256 keyed with the public key PEM', hs256(pem), 'ERR_TOKEN_ALG_NOT_ALLOWED'],
    ['HS256 keyed with the public JWK', hs256(JSON.stringify(signer.publicJwk)), 'ERR_TOKEN_ALG_NOT_ALLOWED'],
    [
      'crit naming a registered claim',
      json(header({ crit: ['exp'] }), claims()),
      'ERR_TOKEN_HEADER_UNSUPPORTED',
    ],
    [
      'crit naming an unknown extension',
      json(header({ crit: ['x-shield'], 'x-shield': 1 }), claims()),
      'ERR_TOKEN_HEADER_UNSUPPORTED',
    ],
    ['empty crit', json(header({ crit: [] }), claims()), 'ERR_TOKEN_HEADER_UNSUPPORTED'],
    [
      'b64: false (RFC 7797)',
      json(header({ b64: false, crit: ['b64'] }), claims()),
      'ERR_TOKEN_HEADER_UNSUPPORTED',
    ],
    [
      'jku pointing elsewhere',
      json(header({ jku: 'https://attacker.example/jwks' }), claims()),
      'ERR_TOKEN_HEADER_UNSUPPORTED',
    ],
    [
      'x5u pointing elsewhere',
      json(header({ x5u: 'https://attacker.example/cert' }), claims()),
      'ERR_TOKEN_HEADER_UNSUPPORTED',
    ],
    [
      'attacker key in jwk',
      json(header({ jwk: signer.publicJwk }), claims()),
      'ERR_TOKEN_HEADER_UNSUPPORTED',
    ],
    ['nested JWT (cty: JWT)', json(header({ cty: 'JWT' }), claims()), 'ERR_TOKEN_HEADER_UNSUPPORTED'],
    ['missing exp', json(header(), without(claims(), 'exp')), 'ERR_TOKEN_CLAIM_INVALID'],
    ['missing sub', json(header(), without(claims(), 'sub')), 'ERR_TOKEN_CLAIM_INVALID'],
    ['exp not a number', json(header(), claims({ exp: String(now() + 300) })), 'ERR_TOKEN_CLAIM_INVALID'],
    ['expired', json(header(), claims({ exp: now() - 3600 })), 'ERR_TOKEN_EXPIRED'],
    ['not yet valid', json(header(), claims({ nbf: now() + 3600 })), 'ERR_TOKEN_NOT_YET_VALID'],
    ['issued in the future', json(header(), claims({ iat: now() + 3600 })), 'ERR_TOKEN_ISSUED_IN_FUTURE'],
    ['wrong audience', json(header(), claims({ aud: 'someone-else' })), 'ERR_TOKEN_AUDIENCE_INVALID'],
    ['wrong issuer', json(header(), claims({ iss: 'https://attacker.example' })), 'ERR_TOKEN_ISSUER_UNKNOWN'],
    ['issuer as an array', json(header(), claims({ iss: [ISSUER] })), 'ERR_TOKEN_CLAIM_INVALID'],
    [
      'duplicate claim',
      signer.craft(JSON.stringify(header()), JSON.stringify(claims()).replace('{', '{"sub":"admin",')),
      'ERR_TOKEN_DUPLICATE_KEY',
    ],
    [
      'duplicate header member',
      signer.craft('{"alg":"ES256","alg":"ES256","kid":"k1"}', JSON.stringify(claims())),
      'ERR_TOKEN_DUPLICATE_KEY',
    ],
    [
      'header swapped, old signature kept',
      `${b64(JSON.stringify(header({ typ: 'JWT' })))}.${gp}.${gs}`,
      'ERR_TOKEN_SIGNATURE_INVALID',
    ],
    [
      'payload changed after signing',
      `${gh}.${b64(JSON.stringify(claims({ sub: 'admin' })))}.${gs}`,
      'ERR_TOKEN_SIGNATURE_INVALID',
    ],
    [
      'signed by another key, same kid',
      (() => {
        const input = `${gh}.${gp}`;
        return `${input}.${b64(cryptoSign('sha256', Buffer.from(input), { key: otherKey, dsaEncoding: 'ieee-p1363' }))}`;
      })(),
      'ERR_TOKEN_SIGNATURE_INVALID',
    ],
    ['ECDSA r = s = 0', `${gh}.${gp}.${b64(Buffer.alloc(64))}`, 'ERR_TOKEN_SIGNATURE_INVALID'],
    ['unknown kid', json(header({ kid: 'nope' }), claims()), 'ERR_TOKEN_KEY_NOT_FOUND'],
    [
      'kid with path traversal',
      json(header({ kid: '../../../../etc/passwd' }), claims()),
      'ERR_TOKEN_KEY_NOT_FOUND',
    ],
    [
      'bound token without its certificate',
      json(header(), claims({ cnf: { 'x5t#S256': 'A'.repeat(43) } })),
      'ERR_TOKEN_BINDING_MISMATCH',
    ],
    ['not a JWT', 'definitely.not.ajwt', 'ERR_TOKEN_MALFORMED'],
    ['JWE-shaped (five parts)', `${gh}.${gp}.${gs}.x.y`, 'ERR_TOKEN_MALFORMED'],
    [
      'oversized (10 KB, over maxTokenBytes)',
      json(header(), claims({ pad: 'x'.repeat(10_000) })),
      'ERR_TOKEN_TOO_LARGE',
    ],
  ];
}

const get = (path: string, token?: string): Promise<CallResult> =>
  running.call(path, token === undefined ? {} : { token });

describe('ShieldJwtStrategy (passport) and IdentityGuard enforce the same rules', () => {
  it('accept a valid token on both paths with the same principal', async () => {
    const token = signer.sign({ jti: 'same' });
    const [g, p] = await Promise.all([get('/guard', token), get('/passport', token)]);
    expect(g.status).toBe(200);
    expect(p.status).toBe(200);
    expect(p.body).toEqual(g.body);
    expect(p.body).toMatchObject({ method: 'oidc', subject: 'alice', tokenId: 'same' });
  });

  it('refuse every row of the attack table on both paths with 401 and the same code', async () => {
    const rows = attackTable();
    const results: string[] = [];
    for (const [name, token] of rows) {
      for (const path of ['/guard', '/passport']) {
        const r = await get(path, token);
        results.push(`${name} ${path}: ${r.status} ${String(r.body.code)}`);
        expect(r.headers['www-authenticate'] ?? '', `${name} ${path}`).toMatch(/^Bearer/);
      }
    }
    expect(results).toEqual(
      rows.flatMap(([name, , code]) => [`${name} /guard: 401 ${code}`, `${name} /passport: 401 ${code}`]),
    );
  });

  it('leave a token beyond the HTTP header limit to Node: 431 before any handler or parse', async () => {
    const huge = signer.craft(JSON.stringify(header()), JSON.stringify(claims({ pad: 'x'.repeat(24_000) })));
    for (const path of ['/guard', '/passport']) expect((await get(path, huge)).status).toBe(431);
  });

  it('close gaps that jsonwebtoken (under passport-jwt) leaves open on its own', async () => {
    const pem = signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const gaps: [string, string, string][] = [
      [
        'crit naming a registered claim',
        signer.craft(JSON.stringify(header({ crit: ['exp'] })), JSON.stringify(claims())),
        'ERR_TOKEN_HEADER_UNSUPPORTED',
      ],
      [
        'missing exp',
        signer.craft(JSON.stringify(header()), JSON.stringify(without(claims(), 'exp'))),
        'ERR_TOKEN_CLAIM_INVALID',
      ],
      [
        'missing sub',
        signer.craft(JSON.stringify(header()), JSON.stringify(without(claims(), 'sub'))),
        'ERR_TOKEN_CLAIM_INVALID',
      ],
      [
        'duplicate claim',
        signer.craft(JSON.stringify(header()), JSON.stringify(claims()).replace('{', '{"sub":"admin",')),
        'ERR_TOKEN_DUPLICATE_KEY',
      ],
    ];
    for (const [name, token, code] of gaps) {
      // jsonwebtoken alone: accepted (the gap is real, so this row proves something).
      expect(() => jwt.verify(token, pem, { algorithms: ['ES256'] }), name).not.toThrow();
      const r = await get('/passport', token);
      expect([name, r.status, r.body.code]).toEqual([name, 401, code]);
    }
  });

  it('answer a missing token with 401 ERR_TOKEN_MISSING on both paths', async () => {
    for (const path of ['/guard', '/passport']) {
      const r = await get(path);
      expect([r.status, r.body.code]).toEqual([401, 'ERR_TOKEN_MISSING']);
    }
  });

  it('enforce @UsePassport() scopes with a 403 insufficient_scope', async () => {
    const r = await get('/passport-admin', signer.sign());
    expect([r.status, r.body.code, r.body.scope]).toEqual([403, 'ERR_INSUFFICIENT_SCOPE', 'models:admin']);
  });

  it('never write a token, or any 12-character piece of one, to any log line', async () => {
    const tokens = [signer.sign({ sub: 'log-check' }), ...attackTable().map(([, t]) => t)];
    for (const t of tokens) for (const path of ['/guard', '/passport']) await get(path, t);
    const log = logger.lines.join('\n');
    // The audit sink (Nest Logger) did write: the check below is not vacuous.
    expect(log).toContain('"subject":"log-check"');
    expect(log).toContain('"decision":"deny"');
    for (const t of tokens) {
      const pieces = new Set<string>();
      for (let i = 0; i + 12 <= Math.min(t.length, 4096); i += 1) pieces.add(t.slice(i, i + 12));
      const leaked = [...pieces].filter((piece) => log.includes(piece));
      expect(leaked).toEqual([]);
    }
  });
});
