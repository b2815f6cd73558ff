/**
 * THREATS "relay: caller's Authorization, DPoP, Cookie headers — never forwarded upstream", with
 * real access tokens of the real dev IdP (apps/dev-idp) and the real `openai` SDK: the stand-in LLM
 * records every header it receives, and none of the caller's credentials may be among them, on any
 * route, streamed or not. The same callers exercise per-model access by scope, role and client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlmRelayModuleOptions } from '@inference-shield/llm-relay';
import { startIdp, type RunningIdp } from '../../identity/support/dev-idp.js';
import { createSharedPki, type SharedPki } from '../../identity/support/idp-pki.js';
import { forgeFromKeysFile, type TokenForge } from '../../identity/support/token-forge.js';
import { CaptureLogger, type TestApp } from '../../support/harness.js';
import {
  API_KEY,
  CaptureSink,
  relayAppModule,
  sdk,
  startRelayApp,
  startStandin,
  type StandinSetup,
} from '../../llm-relay/support/relay-fixture.js';

const AUDIENCE = 'https://models.shield.test';
const root = mkdtempSync(join(tmpdir(), 'relay-attack-'));
const logger = new CaptureLogger();
const audit = new CaptureSink();

let shared: SharedPki;
let idp: RunningIdp;
let forge: TokenForge;
let standin: StandinSetup;
let app: TestApp;
const clients: (OpenAI & { close(): Promise<void> })[] = [];

function relay(): LlmRelayModuleOptions {
  return {
    upstreams: { llm: {} },
    models: {
      chat: { upstream: 'llm', model: 'standin-chat', endpoints: ['chat', 'responses'] },
      embed: { upstream: 'llm', model: 'standin-embed', endpoints: ['embeddings'] },
      'admin-chat': { upstream: 'llm', model: 'standin-chat' },
      'service-chat': { upstream: 'llm', model: 'standin-chat' },
    },
    access: {
      chat: [{ scopes: ['llm:chat'] }],
      embed: [{ scopes: ['llm:chat'] }, { scopes: ['models:read'] }],
      'admin-chat': [{ roles: ['llm-admin'] }],
      'service-chat': [{ clients: ['demo-service'] }],
    },
  };
}

beforeAll(async () => {
  shared = await createSharedPki(root);
  idp = await startIdp(root, 'idp', shared, { audience: AUDIENCE });
  forge = await forgeFromKeysFile(idp.keysFile, { issuer: idp.idp.issuer, audience: AUDIENCE });
  standin = await startStandin({}, shared.pki);
  app = await startRelayApp(
    relayAppModule({
      upstream: { upstreams: { llm: standin.upstream() } },
      relay,
      audit,
      identity: {
        oidc: {
          issuers: [
            {
              issuer: idp.idp.issuer,
              audience: AUDIENCE,
              ca: { pem: idp.idp.caPem },
              requireAccessTokenType: true,
            },
          ],
        },
      },
    }),
    shared.pki,
    logger,
  );
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app?.close();
  await standin?.standin.close();
  await idp?.idp.close();
  rmSync(root, { recursive: true, force: true });
});

function as(token: string, headers: Record<string, string> = {}): OpenAI {
  const c = sdk(app, { token, headers });
  clients.push(c);
  return c;
}

const CALLER_HEADERS = {
  cookie: 'session=CALLER-COOKIE-SENTINEL',
  dpop: 'CALLER-DPOP-SENTINEL.x.y',
  'x-api-key': 'CALLER-KEY-SENTINEL',
  'api-key': 'CALLER-AZURE-KEY-SENTINEL',
  'proxy-authorization': 'Basic CALLER-PROXY-SENTINEL',
  'x-forwarded-for': '203.0.113.9',
  forwarded: 'for=203.0.113.9',
};

describe("the caller's credentials never go upstream", () => {
  it.each(['chat', 'chat streamed', 'responses', 'responses streamed', 'embeddings'])('%s', async (route) => {
    const token = await idp.idp.getToken({ clientId: 'demo-service', scope: 'llm:chat' });
    const openai = as(token, CALLER_HEADERS);
    const before = standin.standin.requests.length;
    const messages = [{ role: 'user' as const, content: 'hello' }];
    if (route === 'chat') await openai.chat.completions.create({ model: 'chat', messages });
    if (route === 'chat streamed') {
      const s = await openai.chat.completions.create({ model: 'chat', messages, stream: true });
      for await (const _ of s) void _;
    }
    if (route === 'responses') await openai.responses.create({ model: 'chat', input: 'hello' });
    if (route === 'responses streamed') {
      const s = await openai.responses.create({ model: 'chat', input: 'hello', stream: true });
      for await (const _ of s) void _;
    }
    if (route === 'embeddings') await openai.embeddings.create({ model: 'embed', input: 'hello' });
    const seen = standin.standin.requests.slice(before);
    expect(seen).toHaveLength(1);
    const headers = seen[0]?.headers ?? {};
    // Our credential replaced theirs; nothing of the caller's went along.
    expect(headers['authorization']).toBe(`Bearer ${API_KEY}`);
    const text = JSON.stringify(headers);
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split('.')[2] ?? '');
    expect(text).not.toMatch(/SENTINEL|203\.0\.113\.9/);
    for (const name of Object.keys(CALLER_HEADERS)) expect(headers[name]).toBeUndefined();
  });
});

describe('per-model access with real tokens', () => {
  it.each([
    ['demo-service with llm:chat', 'demo-service', 'llm:chat', ['chat', 'embed', 'service-chat']],
    ['reader with models:read', 'reader', 'models:read', ['embed']],
  ])('%s lists only its models', async (_name, clientId, scope, expected) => {
    const token = await idp.idp.getToken({ clientId, scope });
    const list = await as(token).models.list();
    expect(list.data.map((m) => m.id).sort()).toEqual(expected);
  });

  it('a role claim (token signed by the IdP key) opens admin-chat; without it, 404', async () => {
    const admin = await forge.sign({ roles: ['llm-admin'], scope: 'llm:chat', client_id: 'ops-console' });
    const res = await as(admin).chat.completions.create({
      model: 'admin-chat',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.model).toBe('admin-chat');
    const plain = await idp.idp.getToken({ clientId: 'demo-service', scope: 'llm:chat' });
    await expect(
      as(plain).chat.completions.create({ model: 'admin-chat', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('a token without scope for a model: 404, never 403 (the name does not leak)', async () => {
    const token = await idp.idp.getToken({ clientId: 'reader', scope: 'models:read' });
    const err = await as(token)
      .chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ code: 'ERR_LLM_MODEL_NOT_FOUND' });
  });

  it('a forged token (another key): 401 in OpenAI shape with the Bearer challenge', async () => {
    const token = await idp.idp.getToken({ clientId: 'demo-service', scope: 'llm:chat' });
    const [h, p] = token.split('.');
    const err = await as(`${h}.${p}.${'A'.repeat(86)}`)
      .models.list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const e = err as InstanceType<typeof OpenAI.AuthenticationError>;
    expect(e.code).toBe('ERR_TOKEN_SIGNATURE_INVALID');
    expect(e.headers?.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
  });

  it('no token or assertion in any log line or event', () => {
    const all = [...logger.lines, ...audit.lines].join('\n');
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}/);
    expect(all).not.toMatch(/SENTINEL/);
  });
});
