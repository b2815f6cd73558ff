/**
 * Attack: keep using a signing key after the IdP removed it, through the verified-token cache.
 *
 * docs/threat-model.md "IdP rotates its signing key": old tokens keep working *until the old key leaves the
 * set*. The verifier's cache promises the same ("entries verified with a key that left its
 * issuer's set are dropped at once"): a key-set swap calls `dropKeys` for the kids that left.
 *
 * The hole is a time-of-check/time-of-use race. A verification resolves its key from the set held
 * when it starts, then awaits the signature check; if the key-set swap lands during that await,
 * `dropKeys` runs before the entry exists, and the verification then caches its result anyway. The
 * token keeps passing from the cache for up to 5 minutes (MAX_CACHE_TTL_MS) although its key is
 * gone. An attacker holding tokens signed with a leaked key simply replays them while the IdP
 * rotates the key out: some replay is always in flight when the swap lands.
 *
 * The test makes the interleaving deterministic instead of hoping for it: the key set comes from a
 * real HTTPS JWKS server on loopback (dev PKI), and the fetch the verifier is given (its documented
 * `deps.fetch`) holds the already-received response until the verification is in flight. It then
 * checks that afterwards the token is refused like any token whose key is not in the set. The same
 * scenario without the cache is the control: it is refused. Fails on commit af71173 (the cached
 * entry outlives its key); passes once a verification that saw the key set change while it ran is
 * not cached (and not remembered for the connection).
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch as undiciFetch, Response } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Get, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { isShieldError } from '@inference-shield/core';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { IdentityModule, Principal, RequireScopes, type ShieldPrincipal } from '@inference-shield/identity';
import {
  IDENTITY_OPTIONS,
  resolveTokenVerifierOptions,
  TOKEN_VERIFIER,
  TokenVerifier,
  type JwksFetch,
  type ResolvedIdentityOptions,
} from '@inference-shield/identity/internal';
import type { JWK } from 'jose';
import { AUDIENCE, callOnce, ISSUER, issuerKey, RawConnection, type IssuerKey } from './attack-kit.js';
import { startPlainNestApp, type PlainTestApp } from '../../support/harness.js';

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const dir = mkdtempSync(join(tmpdir(), 'attack-cache-race-'));
let pki: TestPki;
let jwksServer: Server;
let jwksUri: string;
/** What the JWKS server answers now. */
let published: { keys: JWK[] } = { keys: [] };
let oldKey: IssuerKey;
let newKey: IssuerKey;

beforeAll(async () => {
  pki = await createTestPki(dir);
  [oldKey, newKey] = await Promise.all([issuerKey('old-key'), issuerKey('new-key')]);
  jwksServer = createServer({ key: pki.server.keyPem, cert: pki.server.certPem }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
    res.end(JSON.stringify(published));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUri = `https://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
});

afterAll(async () => {
  jwksServer.closeAllConnections();
  await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A fetch that really asks the JWKS server, and, while `hold` is set, keeps the response it got
 * until the test releases it. The body is already in memory then, so everything after the release
 * (parse, import, swap) runs without waiting on I/O.
 */
function holdingFetch(): {
  fetch: JwksFetch;
  hold(): { reached: Promise<void>; release(): void };
} {
  let held: { reached: Deferred; gate: Deferred } | undefined;
  const fetch = (async (input: Parameters<JwksFetch>[0], init?: Parameters<JwksFetch>[1]) => {
    const res = await undiciFetch(input, init);
    const copy = new Response(await res.text(), { status: res.status, headers: res.headers });
    const h = held;
    if (h) {
      held = undefined;
      h.reached.resolve();
      await h.gate.promise;
    }
    return copy;
  }) as JwksFetch;
  return {
    fetch,
    hold() {
      const h = { reached: deferred(), gate: deferred() };
      held = h;
      return { reached: h.reached.promise, release: () => h.gate.resolve() };
    },
  };
}

async function outcome(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'accepted';
  } catch (err) {
    return isShieldError(err) ? err.code : `unexpected ${String(err)}`;
  }
}

describe('verified-token cache vs. a key removed from the set (THREATS: IdP rotates its signing key)', () => {
  it.each([
    { cacheMaxEntries: 10_000, label: 'with the cache (default)' },
    { cacheMaxEntries: 0, label: 'control: cache off' },
  ])(
    '$label: a token whose key left the set is refused, even if it was being verified during the swap',
    async ({ cacheMaxEntries }) => {
      published = { keys: [oldKey.jwk] };
      let skewMs = 0;
      const now = (): number => Date.now() + skewMs;
      const net = holdingFetch();
      const verifier = await TokenVerifier.create(
        resolveTokenVerifierOptions({
          issuers: [
            {
              issuer: ISSUER,
              audience: AUDIENCE,
              jwksUri,
              ca: { pem: pki.ca.certPem },
              algorithms: ['ES256'],
            },
          ],
          cacheMaxEntries,
        }),
        { now, fetch: net.fetch },
      );
      try {
        const token = await oldKey.sign({ sub: 'mallory' });
        const statsOf = () => verifier.stats().issuers[ISSUER];
        const loadedAt = statsOf()?.lastFetchOk;

        // The IdP removes the old key (say it leaked) and an operator refreshes at once.
        published = { keys: [newKey.jwk] };
        skewMs += 1_000; // so the swap's timestamp is told apart from the first load's
        const held = net.hold();
        const refreshed = verifier.refreshKeys();
        await held.reached; // the new set is fetched, not applied yet

        // A replay of the old-key token is in flight when the swap lands: its key lookup ran
        // synchronously inside verify(), against the old set; its signature check waits on the
        // crypto thread pool, while everything left of the refresh (parse, import, swap) runs in
        // promise jobs, which all complete first.
        const inflight = outcome(verifier, token);
        held.release();
        await refreshed;
        // It started while its key was in the set: accepting that one request is fine.
        expect(await inflight).toBe('accepted');
        expect(statsOf()?.lastFetchOk).not.toBe(loadedAt);

        // The old key is no longer in the set: its tokens must be refused from now on.
        expect(await outcome(verifier, token)).toBe('ERR_TOKEN_KEY_NOT_FOUND');
        // And the new key works (the set did change).
        expect(await outcome(verifier, await newKey.sign({ sub: 'alice' }))).toBe('accepted');
      } finally {
        await verifier.close();
      }
    },
  );
});

/**
 * The same race through the guard, on one keep-alive connection: the first request with the
 * old-key token is being verified when the swap lands; the next request on that connection, and
 * a request on a new connection, present the same token after its key has left the set.
 */
describe('through IdentityGuard, on a keep-alive connection', () => {
  @Controller()
  class InferController {
    @Get('infer')
    @RequireScopes('models:infer')
    infer(@Principal() caller: ShieldPrincipal): { subject: string } {
      return { subject: caller.subject };
    }
  }

  async function startGuarded(net: ReturnType<typeof holdingFetch>): Promise<{
    running: PlainTestApp;
    verifier: TokenVerifier;
    skew(ms: number): void;
  }> {
    let skewMs = 0;
    const now = (): number => Date.now() + skewMs;
    @Module({
      imports: [
        IdentityModule.forRoot({
          oidc: {
            issuers: [
              {
                issuer: ISSUER,
                audience: AUDIENCE,
                jwksUri,
                ca: { pem: pki.ca.certPem },
                algorithms: ['ES256'],
              },
            ],
          },
        }),
      ],
      controllers: [InferController],
    })
    class RotationApp {}
    const moduleRef = await Test.createTestingModule({ imports: [RotationApp] })
      .overrideProvider(TOKEN_VERIFIER)
      .useFactory({
        factory: (options: ResolvedIdentityOptions) => {
          if (!options.oidc) throw new Error('fixture without oidc');
          return TokenVerifier.create(options.oidc, { now, fetch: net.fetch });
        },
        inject: [IDENTITY_OPTIONS],
      })
      .compile();
    // Opt-out of the bootstrap: the verifier is replaced through Test.createTestingModule (a clock
    // and a fetch under the test's control), and createHttpsApp takes a root module, not a
    // compiled testing module. The subject here is the verifier's cache, not the server.
    const running = await startPlainNestApp(moduleRef, {
      pki,
      // What serverOptions(pki) gave before: optional mTLS against the test CA, TLS 1.3.
      httpsOptions: {
        key: pki.server.keyPem,
        cert: pki.server.certPem,
        ca: pki.ca.certPem,
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      },
      why: 'a provider replaced with Test.createTestingModule',
    });
    return {
      running,
      verifier: running.app.get<TokenVerifier>(TOKEN_VERIFIER),
      skew: (ms) => (skewMs += ms),
    };
  }

  const bearer = (token: string) => [`Authorization: Bearer ${token}`];

  it('control: a token verified (and remembered) before the rotation is refused once its key left', async () => {
    published = { keys: [oldKey.jwk] };
    const net = holdingFetch();
    const { running, verifier, skew } = await startGuarded(net);
    const conn = await RawConnection.open(running.port, pki);
    try {
      const token = await oldKey.sign({ sub: 'mallory' });
      expect((await conn.request('GET', '/infer', bearer(token))).status).toBe(200);
      expect((await conn.request('GET', '/infer', bearer(token))).status).toBe(200);
      published = { keys: [newKey.jwk] };
      skew(1_000);
      await verifier.refreshKeys();
      const sameConnection = await conn.request('GET', '/infer', bearer(token));
      expect(sameConnection.status).toBe(401);
      expect(sameConnection.body['code']).toBe('ERR_TOKEN_KEY_NOT_FOUND');
      expect((await callOnce(running.port, pki, '/infer', { headers: bearer(token) })).status).toBe(401);
    } finally {
      conn.close();
      await running.close();
    }
  });

  it('a token being verified while its key leaves the set is refused on the next request', async () => {
    published = { keys: [oldKey.jwk] };
    const net = holdingFetch();
    const { running, verifier, skew } = await startGuarded(net);
    const conn = await RawConnection.open(running.port, pki);
    try {
      const token = await oldKey.sign({ sub: 'mallory' });
      published = { keys: [newKey.jwk] };
      skew(1_000);
      const held = net.hold();
      const refreshed = verifier.refreshKeys();
      await held.reached;

      // Send the replay, and release the new key set as soon as the server has started checking
      // it (its cache lookup is the first thing the check does, synchronously up to the key
      // lookup; the signature then waits on the crypto thread pool, the swap does not).
      const missesBefore = verifier.stats().cacheMisses;
      const first = conn.request('GET', '/infer', bearer(token));
      for (let i = 0; i < 100_000 && verifier.stats().cacheMisses === missesBefore; i++) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(verifier.stats().cacheMisses).toBeGreaterThan(missesBefore);
      held.release();
      await refreshed;
      // It started while its key was in the set: that one request may pass.
      expect((await first).status).toBe(200);

      const sameConnection = await conn.request('GET', '/infer', bearer(token));
      expect(sameConnection.status).toBe(401);
      expect(sameConnection.body['code']).toBe('ERR_TOKEN_KEY_NOT_FOUND');
      const newConnection = await callOnce(running.port, pki, '/infer', { headers: bearer(token) });
      expect(newConnection.status).toBe(401);
      // The new key works: the set did change.
      const fresh = await callOnce(running.port, pki, '/infer', {
        headers: bearer(await newKey.sign({ sub: 'alice' })),
      });
      expect(fresh.status).toBe(200);
    } finally {
      conn.close();
      await running.close();
    }
  });
});
