/**
 * The IdP's keys over time, end to end against the real dev IdP: a rotation is picked up with
 * exactly one JWKS refetch while the old key keeps working; a flood of unknown `kid`s costs at
 * most one refetch; with the IdP stopped, known keys keep working and unknown ones are refused
 * promptly; a fresh app cannot start without the IdP.
 *
 * The refetch cooldown is measured on the verifier's clock, so the app's `TokenVerifier` is built
 * with a clock this file can move forward (the module's `TOKEN_VERIFIER` provider, overridden
 * with Nest's testing module): "the cooldown has passed" is then a fact, not a wait. The skew
 * stays far below the IdP's token lifetime (300 s) and the key refresh interval (10 min).
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHttpsApp } from '@inference-shield/https';
import { LoggerAuditSink, type IdentityModuleOptions } from '@inference-shield/identity';
import {
  IDENTITY_OPTIONS,
  TOKEN_VERIFIER,
  TokenVerifier,
  type ResolvedIdentityOptions,
} from '@inference-shield/identity/internal';
import { TokenLedger } from './support/capture.js';
import { startIdp, type RunningIdp } from './support/dev-idp.js';
import { fixtureModule, ROUTES } from './support/fixture-app.js';
import { call, CaptureLogger, type CallResult } from '../support/harness.js';
import { createSharedPki, type SharedPki } from './support/idp-pki.js';
import { forgeFromKeysFile, forgeWithFreshKey } from './support/token-forge.js';

const AUDIENCE = 'https://models.shield.test';
const COOLDOWN_MS = 30_000;
/**
 * Keys held stay usable this long without a successful fetch. Also the lazy refresh interval, so
 * no background refresh runs before the last test (the skew before it stays near two minutes).
 */
const MAX_STALENESS_MS = 250_000;
const FLOOD = 50;

const root = mkdtempSync(join(tmpdir(), 'identity-keys-'));
const logger = new CaptureLogger();
const ledger = new TokenLedger();
const consoleLines: string[] = [];

/** The verifier's clock: real time plus a skew the tests advance. */
let skewMs = 0;
const now = (): number => Date.now() + skewMs;
const letCooldownPass = (): void => {
  skewMs += COOLDOWN_MS + 1_000;
};

let shared: SharedPki;
let running: RunningIdp;
let app: INestApplication;
let port: number;
let verifier: TokenVerifier;

const issuerStats = () => {
  const stats = verifier.stats().issuers[running.idp.issuer];
  if (!stats) throw new Error('the verifier has no stats for the IdP');
  return stats;
};
const infer = (token: string): Promise<CallResult> =>
  call(port, { ca: shared.pki.ca.certPem, path: ROUTES.infer, method: 'POST', token: ledger.add(token) });
const kidOf = (token: string): unknown =>
  (JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as { kid?: unknown }).kid;

function identityOptions(): IdentityModuleOptions {
  return {
    oidc: {
      issuers: [
        {
          issuer: running.idp.issuer,
          audience: AUDIENCE,
          jwksUri: running.idp.jwksUri,
          ca: { pem: running.idp.caPem },
          requireAccessTokenType: true,
          refetchCooldownMs: COOLDOWN_MS,
          refreshIntervalMs: MAX_STALENESS_MS,
          maxKeyStalenessMs: MAX_STALENESS_MS,
        },
      ],
    },
    // The fixture has an mTLS route: without an mtls section the app refuses to start.
    mtls: { trustDomains: ['shield.local'] },
    // The Logger sink (the default writes to stdout): its JSON lines go through Nest's logger, which is captured.
    audit: { sink: new LoggerAuditSink() },
  };
}

beforeAll(async () => {
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      consoleLines.push(args.map(String).join(' '));
    });
  }
  shared = await createSharedPki(root);
  running = await startIdp(root, 'idp', shared, { audience: AUDIENCE });

  const moduleRef = await Test.createTestingModule({ imports: [fixtureModule(identityOptions())] })
    .setLogger(logger)
    .overrideProvider(TOKEN_VERIFIER)
    .useFactory({
      factory: (options: ResolvedIdentityOptions) => {
        if (!options.oidc) throw new Error('fixture without oidc');
        return TokenVerifier.create(options.oidc, { now });
      },
      inject: [IDENTITY_OPTIONS],
    })
    .compile();
  // Plain Nest HTTPS: this file is about keys, not about the TLS policy (test/https covers it).
  app = moduleRef.createNestApplication({
    httpsOptions: { key: shared.pki.server.keyPem, cert: shared.pki.server.certPem },
    logger,
  });
  await app.listen(0, '127.0.0.1');
  port = (app.getHttpServer() as { address(): { port: number } }).address().port;
  verifier = app.get<TokenVerifier>(TOKEN_VERIFIER);
});

afterAll(async () => {
  await app?.close();
  await running?.idp.close();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('IdP key lifecycle (one app, one IdP, in order)', () => {
  let oldKid: string;
  let oldTokenSent: string;
  let oldTokenUnsent: string;

  it('loads the key set once at start-up and accepts a token of the current key', async () => {
    expect(issuerStats()).toMatchObject({ jwksFetches: 1, keys: 1 });
    oldKid = running.idp.signingKid;
    oldTokenSent = await running.idp.getToken({ scope: 'models:infer' });
    oldTokenUnsent = await running.idp.getToken({ scope: 'models:infer' });
    expect(kidOf(oldTokenSent)).toBe(oldKid);
    const r = await infer(oldTokenSent);
    expect(r.status).toBe(200);
    expect(r.body['subject']).toBe('demo-service');
  });

  describe('rotation at the IdP', () => {
    let fetchesBefore: number;
    let newToken: string;

    beforeAll(async () => {
      await running.idp.rotateKeys();
      newToken = await running.idp.getToken({ scope: 'models:infer' });
      letCooldownPass();
      fetchesBefore = issuerStats().jwksFetches;
    });

    it('the IdP now signs with a new kid', () => {
      expect(running.idp.signingKid).not.toBe(oldKid);
      expect(kidOf(newToken)).toBe(running.idp.signingKid);
    });

    it('a token with the new kid is accepted after exactly one JWKS refetch', async () => {
      const r = await infer(newToken);
      expect(r.status).toBe(200);
      expect(issuerStats().jwksFetches).toBe(fetchesBefore + 1);
      // Both keys are served now: the new one signs, the old one is kept for its tokens.
      expect(issuerStats().keys).toBe(2);
    });

    it('old-kid tokens keep working with no further fetch (one seen before, one never verified)', async () => {
      expect((await infer(oldTokenSent)).status).toBe(200);
      // Never verified before: the old key itself checks the signature (no verified-token cache hit).
      expect((await infer(oldTokenUnsent)).status).toBe(200);
      const retired = await forgeFromKeysFile(
        running.keysFile,
        { issuer: running.idp.issuer, audience: AUDIENCE },
        1,
      );
      expect(retired.kid).toBe(oldKid);
      expect((await infer(await retired.sign())).status).toBe(200);
      expect(issuerStats().jwksFetches).toBe(fetchesBefore + 1);
    });
  });

  describe(`flood of ${FLOOD} concurrent tokens with random unknown kids`, () => {
    it('all are refused with ERR_TOKEN_KEY_NOT_FOUND and the key set is fetched once (single-flight + cooldown)', async () => {
      letCooldownPass();
      const fetchesBefore = issuerStats().jwksFetches;
      const attacker = await forgeWithFreshKey({ issuer: running.idp.issuer, audience: AUDIENCE });
      const tokens = await Promise.all(
        Array.from({ length: FLOOD }, () => attacker.sign({}, { kid: `kid-${randomUUID()}` })),
      );
      const results = await Promise.all(tokens.map((t) => infer(t)));
      for (const r of results) {
        expect(r.status).toBe(401);
        expect(r.body['code']).toBe('ERR_TOKEN_KEY_NOT_FOUND');
      }
      // At most one refetch, whatever the interleaving; and exactly one here, since the cooldown
      // had passed: the first unknown kid refetched, the others shared that fetch or fell inside
      // the new cooldown.
      expect(issuerStats().jwksFetches - fetchesBefore).toBe(1);
    });

    it('a good token still passes right after the flood, without a fetch', async () => {
      const fetchesBefore = issuerStats().jwksFetches;
      expect((await infer(await running.idp.getToken({ scope: 'models:infer' }))).status).toBe(200);
      expect(issuerStats().jwksFetches).toBe(fetchesBefore);
    });
  });

  describe('the old key leaves the set after two more rotations', () => {
    it('new tokens pass after one refetch; tokens of the removed key are refused, even ones verified before', async () => {
      await running.idp.rotateKeys();
      await running.idp.rotateKeys();
      const oldestServed = await forgeFromKeysFile(
        running.keysFile,
        { issuer: running.idp.issuer, audience: AUDIENCE },
        2,
      );
      expect(oldestServed.kid).not.toBe(oldKid);
      letCooldownPass();
      const fetchesBefore = issuerStats().jwksFetches;
      expect((await infer(await running.idp.getToken({ scope: 'models:infer' }))).status).toBe(200);
      expect(issuerStats()).toMatchObject({ jwksFetches: fetchesBefore + 1, keys: 3 });
      // oldTokenSent was verified (and cached) earlier: the cache must not outlive its key.
      for (const token of [oldTokenSent, oldTokenUnsent]) {
        const r = await infer(token);
        expect(r.status).toBe(401);
        expect(r.body['code']).toBe('ERR_TOKEN_KEY_NOT_FOUND');
      }
    });
  });

  describe('IdP stopped mid-test', () => {
    beforeAll(async () => {
      await running.idp.close();
    });

    it('the IdP is really unreachable', async () => {
      await expect(running.idp.getToken({ scope: 'models:infer' })).rejects.toThrow();
    });

    it('a token with a known kid keeps working', async () => {
      const current = await forgeFromKeysFile(running.keysFile, {
        issuer: running.idp.issuer,
        audience: AUDIENCE,
      });
      const r = await infer(await current.sign());
      expect(r.status).toBe(200);
    });

    it('a token with an unknown kid → 401 ERR_TOKEN_KEY_NOT_FOUND; the failed refetch is recorded, the request completes', async () => {
      letCooldownPass();
      const fetchesBefore = issuerStats().jwksFetches;
      const attacker = await forgeWithFreshKey({ issuer: running.idp.issuer, audience: AUDIENCE });
      const r = await infer(await attacker.sign());
      expect(r.status).toBe(401);
      expect(r.body['code']).toBe('ERR_TOKEN_KEY_NOT_FOUND');
      expect(r.headers['www-authenticate']).toBe(
        'Bearer error="invalid_token", error_description="ERR_TOKEN_KEY_NOT_FOUND"',
      );
      // It did try the IdP (the cooldown had passed), and that failure is what operators see.
      expect(issuerStats().jwksFetches).toBe(fetchesBefore + 1);
      expect(issuerStats().lastError).toEqual(expect.any(String));
    });

    it('known keys still work after the failed refetch (the old set is kept, not emptied)', async () => {
      const current = await forgeFromKeysFile(running.keysFile, {
        issuer: running.idp.issuer,
        audience: AUDIENCE,
      });
      expect((await infer(await current.sign())).status).toBe(200);
      expect(issuerStats().keys).toBe(3);
    });

    it('after maxKeyStalenessMs without a successful fetch, known keys are refused too: 503, not 500', async () => {
      const lastOk = issuerStats().lastFetchOk ?? 0;
      skewMs += lastOk + MAX_STALENESS_MS + 1_000 - now();
      const current = await forgeFromKeysFile(running.keysFile, {
        issuer: running.idp.issuer,
        audience: AUDIENCE,
      });
      // Valid on the verifier's clock: only the age of the key set can refuse it.
      const iat = Math.floor(now() / 1000);
      const r = await infer(await current.sign({ iat, exp: iat + 300 }));
      expect(r.status).toBe(503);
      expect(r.body['code']).toBe('ERR_KEYSET_UNAVAILABLE');
    });

    it('a new app cannot start while the IdP is unreachable (ERR_KEYSET_UNAVAILABLE at bootstrap)', async () => {
      const attempt = createHttpsApp(fixtureModule(identityOptions()), {
        tls: { cert: shared.pki.server.cert, key: shared.pki.server.key },
        reload: { watch: false, sighup: false },
        nest: { logger, abortOnError: false },
      }).then(async (started) => {
        // Instances (and so the verifier) may be created at listen time instead: try it, then close.
        try {
          await started.listen(0, '127.0.0.1');
        } finally {
          await started.close();
        }
      });
      await expect(attempt).rejects.toMatchObject({ code: 'ERR_KEYSET_UNAVAILABLE' });
    });
  });
});

describe('logs of this file', () => {
  it('audit lines (Logger sink, through Nest logger) exist for allow and deny', () => {
    const audit = logger.lines.filter((l) => l.includes('ShieldAudit'));
    expect(
      audit.some((l) => l.includes('"decision":"allow"') && l.includes('"subject":"demo-service"')),
    ).toBe(true);
    expect(audit.some((l) => l.includes('"decision":"deny"') && l.includes('ERR_TOKEN_KEY_NOT_FOUND'))).toBe(
      true,
    );
  });

  it('no log or console line holds a token, its payload, or 16 characters of its signature', () => {
    expect(ledger.size).toBeGreaterThan(FLOOD);
    expect(ledger.leaks([...logger.lines, ...consoleLines])).toEqual([]);
  });
});
