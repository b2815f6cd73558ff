/**
 * DPoP-bound opaque tokens (RFC 9449 + RFC 7662), end to end: a real DPoP client (oauth4webapi's
 * `DPoP()` handle) gets an opaque token from the real dev IdP for an opaque resource; the IdP's
 * introspection answer carries `token_type: DPoP` and `cnf.jkt`, and the app checks the proof of
 * every request exactly as for a DPoP-bound JWT, through both doors (guard and passport).
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_VERIFIER, type TokenVerifier } from '@inference-shield/identity/internal';
import { DpopClient, PUBLIC_ORIGIN, routedFetch } from './support/dpop-client.js';
import { DOORS, DPOP_ROUTES, dpopFixtureModule } from './support/dpop-fixture.js';
import { createSharedPki, type SharedPki } from './support/idp-pki.js';
import { RESOURCES, startIntrospectionIdp, type IntrospectionIdp } from './support/introspection-idp.js';
import { CaptureLogger, startApp, type TestApp } from '../support/harness.js';

/** The dev-only secret `startIntrospectionIdp` gives `demo-opaque`. */
const CLIENT_SECRET = 'dev-only-introspection-test-client-secret-abcdef';

const root = mkdtempSync(join(tmpdir(), 'introspection-dpop-e2e-'));
const logger = new CaptureLogger();
const tokens: string[] = [];

let shared: SharedPki;
let idp: IntrospectionIdp;
let app: TestApp;
let client: DpopClient;
let token: string;

/** An opaque client-credentials token for the opaque resource, requested with `who`'s DPoP proof. */
async function dpopOpaqueToken(who: DpopClient): Promise<{ accessToken: string; tokenType: string }> {
  const issuer = new URL(idp.idp.issuer);
  const customFetch = routedFetch(idp.idp.caPem, 0);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { [oauth.customFetch]: customFetch }),
  );
  const response = await oauth.clientCredentialsGrantRequest(
    as,
    who.client,
    oauth.ClientSecretBasic(CLIENT_SECRET),
    new URLSearchParams({ scope: 'models:infer', resource: RESOURCES.opaque }),
    { DPoP: who.handle, [oauth.customFetch]: customFetch },
  );
  const result = await oauth.processClientCredentialsResponse(as, who.client, response);
  tokens.push(result.access_token);
  return { accessToken: result.access_token, tokenType: result.token_type };
}

beforeAll(async () => {
  shared = await createSharedPki(root);
  idp = await startIntrospectionIdp(root, 'idp', shared);
  app = await startApp(
    dpopFixtureModule(
      {
        oidc: {
          issuers: [
            {
              issuer: idp.idp.issuer,
              resource: RESOURCES.opaque,
              ca: { pem: idp.idp.caPem },
              introspection: {
                endpoint: idp.endpoint,
                clientId: 'rs-pkjwt',
                clientAuth: { method: 'private_key_jwt', key: { file: idp.rsPrivateKeyFile } },
              },
            },
          ],
          opaqueTokenIssuer: idp.idp.issuer,
        },
        dpop: { origin: PUBLIC_ORIGIN },
      },
      { passport: true },
    ),
    { pki: shared.pki, logger },
  );
  client = await DpopClient.create('demo-opaque');
  let tokenType: string;
  ({ accessToken: token, tokenType } = await dpopOpaqueToken(client));
  expect(tokenType.toLowerCase()).toBe('dpop');
  expect(token).not.toContain('.');
});

afterAll(async () => {
  await app?.close();
  await idp?.close();
  rmSync(root, { recursive: true, force: true });
});

describe.each(DOORS)('a DPoP-bound opaque token through the %s', (door) => {
  it('with a fresh proof by its key: 200', async () => {
    const r = await client.call(app.port, app.ca, DPOP_ROUTES[door], token);
    expect(r.status).toBe(200);
    expect(r.authorization.startsWith('DPoP ')).toBe(true);
  });

  it("with a thief's proof (another key): 401 ERR_DPOP_BINDING_MISMATCH", async () => {
    const thief = await DpopClient.create('demo-opaque');
    const r = await thief.call(app.port, app.ca, DPOP_ROUTES[door], token);
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_BINDING_MISMATCH',
    });
  });

  it('sent as a bearer token: 401 ERR_DPOP_TOKEN_AS_BEARER', async () => {
    const r = await app.call(DPOP_ROUTES[door], { method: 'POST', token });
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_TOKEN_AS_BEARER',
    });
  });

  it('with a proof for another token (ath): 401 ERR_DPOP_BINDING_MISMATCH', async () => {
    const r = await client.call(app.port, app.ca, DPOP_ROUTES[door], token, {
      tamper: (_header, payload) => {
        payload['ath'] = 'A'.repeat(43);
      },
    });
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_DPOP_BINDING_MISMATCH',
    });
  });
});

describe('the introspection of a DPoP-bound token', () => {
  it('is cached like any other (the proof is still checked on every request)', () => {
    const stats = app.app.get<TokenVerifier>(TOKEN_VERIFIER).stats().introspection;
    expect(stats?.calls).toBe(1);
    expect(stats?.cacheHits).toBeGreaterThan(0);
  });

  it('no token is logged', () => {
    for (const line of logger.lines) for (const t of tokens) expect(line).not.toContain(t);
  });
});
