/**
 * RFC 9728 Protected Resource Metadata and RFC 8707 resource indicators, end to end: the app
 * serves its metadata at `/.well-known/oauth-protected-resource/mcp` (its resource has a path),
 * every 401 challenge names it (guard, passport and the header-only early refusal), and an
 * MCP-style client that knows nothing but the server URL gets in: 401 → resource metadata →
 * authorization server metadata → client-credentials token for that resource → 200, with the
 * real `@modelcontextprotocol/sdk` client auth and oauth4webapi's resource discovery against the
 * real dev IdP (oidc-provider).
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, HttpCode, Module, Post } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch as undiciFetch } from 'undici';
import {
  auth,
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { customFetch, processResourceDiscoveryResponse, resourceDiscoveryRequest } from 'oauth4webapi';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import {
  IdentityModule,
  Principal,
  RequireScopes,
  type IdentityModuleOptions,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import { ShieldPassportModule, UsePassport } from '@inference-shield/identity/passport';
import { loadDevIdpClientsFile } from '../../apps/dev-idp/src/index.js';
import { CLIENTS_FILE, startIdp, type RunningIdp } from './support/dev-idp.js';
import { createSharedPki, type SharedPki } from './support/idp-pki.js';
import { forgeFromKeysFile } from './support/token-forge.js';
import { call, CaptureLogger, type CallResult } from '../support/harness.js';

const root = mkdtempSync(join(tmpdir(), 'discovery-e2e-'));
const logger = new CaptureLogger();

let shared: SharedPki;
let idp: RunningIdp;
let app: HttpsApp;
let port: number;
let resource: string;
let metadataUrl: string;
let agent: Agent;

/**
 * undici's fetch trusting the test CA, answering a global `Response` (the MCP SDK checks
 * `instanceof Response`): what the MCP client and oauth4webapi are given.
 */
const fetchFn = (async (url: string | URL, init?: Parameters<typeof undiciFetch>[1]) => {
  const res = await undiciFetch(url, { ...init, dispatcher: agent });
  const body = await res.arrayBuffer();
  return new Response(res.status === 204 ? null : body, {
    status: res.status,
    headers: Object.fromEntries(res.headers.entries()),
  });
}) as unknown as typeof fetch;

@Controller()
class McpController {
  @Post('mcp')
  @HttpCode(200)
  @RequireScopes('models:infer')
  mcp(@Principal() caller: ShieldPrincipal): { subject: string; audience: unknown } {
    return { subject: caller.subject, audience: caller.claims['aud'] };
  }

  @Post('passport/mcp')
  @HttpCode(200)
  @UsePassport({ scopes: ['models:infer'] })
  passport(@Principal() caller: ShieldPrincipal): { subject: string } {
    return { subject: caller.subject };
  }
}

function appModule(identity: IdentityModuleOptions) {
  @Module({
    imports: [IdentityModule.forRoot(identity), ShieldPassportModule],
    controllers: [McpController],
  })
  class DiscoveryFixtureModule {}
  return DiscoveryFixtureModule;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function req(
  path: string,
  opts: { method?: string; token?: string; json?: unknown } = {},
): Promise<CallResult> {
  return call(port, { ca: shared.pki.ca.certPem, path, method: opts.method ?? 'POST', ...opts });
}

beforeAll(async () => {
  shared = await createSharedPki(root);
  // The resource identifier is the URL clients reach: the app's port must be known first.
  port = await freePort();
  resource = `https://localhost:${port}/mcp`;
  metadataUrl = `https://localhost:${port}/.well-known/oauth-protected-resource/mcp`;
  // The dev IdP's default resource becomes this one (RFC 8707: the token's aud).
  idp = await startIdp(root, 'idp', shared, { audience: resource });
  agent = new Agent({ connect: { ca: shared.pki.ca.certPem } });
  app = await createHttpsApp(
    appModule({
      oidc: {
        issuers: [
          {
            issuer: idp.idp.issuer,
            // RFC 8707: the audience stated as the resource identifier; nothing else accepted.
            resource,
            ca: { pem: idp.idp.caPem },
            requireAccessTokenType: true,
          },
        ],
      },
      mtls: { trustDomains: ['shield.local'] },
      resourceMetadata: { resource, scopesSupported: ['models:infer'], resourceName: 'Shield MCP test' },
    }),
    {
      tls: { cert: shared.pki.server.cert, key: shared.pki.server.key },
      mtls: { mode: 'optional', ca: { file: shared.pki.ca.cert } },
      reload: { watch: false, sighup: false },
      nest: { logger },
    },
  );
  await app.listen(port, '127.0.0.1');
});

afterAll(async () => {
  await app?.close();
  await agent?.close();
  await idp?.idp.close();
  rmSync(root, { recursive: true, force: true });
});

describe('GET /.well-known/oauth-protected-resource/mcp (RFC 9728 §3.1: the path after the well-known part)', () => {
  it('answers the metadata generated from the configuration, cacheable, without any credential', async () => {
    const r = await req('/.well-known/oauth-protected-resource/mcp', { method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers['cache-control']).toBe('public, max-age=3600');
    expect(r.body).toEqual({
      resource,
      authorization_servers: [idp.idp.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: ['models:infer'],
      tls_client_certificate_bound_access_tokens: true,
      resource_name: 'Shield MCP test',
    });
    // The bootstrap's security headers are still there: the route runs behind the request gate.
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  it('is served only where the resource says: not at the bare well-known path, not for POST', async () => {
    expect((await req('/.well-known/oauth-protected-resource', { method: 'GET' })).status).toBe(404);
    expect((await req('/.well-known/oauth-protected-resource/mcp', { method: 'POST' })).status).toBe(404);
  });

  it("oauth4webapi's resourceDiscoveryRequest accepts it (resource equals the URL asked for)", async () => {
    const expected = new URL(resource);
    const response = await resourceDiscoveryRequest(expected, {
      [customFetch]: (url, init) => fetchFn(url, init as RequestInit),
    });
    const metadata = await processResourceDiscoveryResponse(expected, response);
    expect(metadata.resource).toBe(resource);
    expect(metadata.authorization_servers).toEqual([idp.idp.issuer]);
  });
});

describe('every 401 challenge names the metadata (RFC 9728 §5.1)', () => {
  it.each(['/mcp', '/passport/mcp'])('%s without a token: Bearer resource_metadata="..."', async (path) => {
    const r = await req(path);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe(`Bearer resource_metadata="${metadataUrl}"`);
  });

  it.each(['/mcp', '/passport/mcp'])(
    '%s with a bad token: invalid_token and resource_metadata',
    async (path) => {
      const r = await req(path, { token: 'not-a-token' });
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe(
        `Bearer error="invalid_token", error_description="${String(r.body['code'])}", resource_metadata="${metadataUrl}"`,
      );
    },
  );

  it('the header-only early refusal (a body announced, no token) carries it too', async () => {
    const r = await req('/mcp', { json: { jsonrpc: '2.0', id: 1, method: 'initialize' } });
    expect(r.status).toBe(401);
    expect(r.headers['connection']).toBe('close');
    expect(r.headers['www-authenticate']).toBe(`Bearer resource_metadata="${metadataUrl}"`);
  });

  it('the MCP SDK reads resource_metadata from the 401', async () => {
    const response = await fetchFn(resource, { method: 'POST' });
    await response.body?.cancel();
    expect(response.status).toBe(401);
    expect(extractWWWAuthenticateParams(response).resourceMetadataUrl?.href).toBe(metadataUrl);
  });
});

describe('an MCP-style client flow: 401 → metadata → authorization server → token → 200', () => {
  it('the MCP SDK auth() with client credentials gets a token for this resource, which is accepted', async () => {
    const demo = loadDevIdpClientsFile(CLIENTS_FILE).clients.find((c) => c.clientId === 'demo-service');
    if (demo?.clientSecret === undefined) throw new Error('demo-service has no secret');
    // 1. The unauthenticated call: a 401 naming the metadata.
    const first = await fetchFn(resource, { method: 'POST' });
    await first.body?.cancel();
    expect(first.status).toBe(401);
    const { resourceMetadataUrl } = extractWWWAuthenticateParams(first);
    expect(resourceMetadataUrl?.href).toBe(metadataUrl);
    // 2-4. The SDK: resource metadata, the AS metadata of authorization_servers[0], the token
    // request (client_credentials, resource = the metadata's resource, scope = scopes_supported).
    const provider = new ClientCredentialsProvider({
      clientId: demo.clientId,
      clientSecret: demo.clientSecret,
      expectedIssuer: idp.idp.issuer,
      // What the metadata's scopes_supported advertises.
      scope: 'models:infer',
    });
    const result = await auth(provider, {
      serverUrl: resource,
      ...(resourceMetadataUrl !== undefined ? { resourceMetadataUrl } : {}),
      fetchFn,
    });
    expect(result).toBe('AUTHORIZED');
    const token = provider.tokens()?.access_token;
    expect(typeof token).toBe('string');
    // 5. The call again, with the token: the aud is the resource identifier (RFC 8707).
    const r = await req('/mcp', { token: token ?? '' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ subject: 'demo-service', audience: resource });
    for (const line of logger.lines) expect(line).not.toContain(token ?? '<none>');
  });

  it('the SDK resource-metadata discovery from the server URL alone (path-aware) finds the same document', async () => {
    const metadata = await discoverOAuthProtectedResourceMetadata(resource, undefined, fetchFn);
    expect(metadata.resource).toBe(resource);
  });

  it.each([
    ['the origin without the path', (r: string) => new URL(r).origin],
    ['a trailing slash', (r: string) => `${r}/`],
    ['another case', (r: string) => r.toUpperCase()],
  ])('RFC 8707: aud is compared whole and exactly: %s is 401', async (_name, mutate) => {
    const forge = await forgeFromKeysFile(idp.keysFile, {
      issuer: idp.idp.issuer,
      audience: mutate(resource),
    });
    const good = await forgeFromKeysFile(idp.keysFile, { issuer: idp.idp.issuer, audience: resource });
    expect((await req('/mcp', { token: await good.sign() })).status).toBe(200);
    const r = await req('/mcp', { token: await forge.sign() });
    expect({ status: r.status, code: r.body['code'] }).toEqual({
      status: 401,
      code: 'ERR_TOKEN_AUDIENCE_INVALID',
    });
  });
});
