/**
 * The relay end to end: the stand-in hosted LLM (mTLS + API key, apps/llm-standin), an app with
 * IdentityModule (mTLS workloads by SPIFFE ID, optionally the real dev IdP), UpstreamModule and
 * LlmRelayModule started through the real bootstrap, and the real `openai` SDK as the caller.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Module, type DynamicModule } from '@nestjs/common';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
import type { IssuedCertificate, TestPki } from '@inference-shield/dev-pki';
import {
  IdentityModule,
  principalOf,
  type AuditEvent,
  type AuditSink,
  type IdentityModuleOptions,
} from '@inference-shield/identity';
import { LlmRelayModule, type LlmRelayModuleOptions } from '@inference-shield/llm-relay';
import { UpstreamModule, type UpstreamModuleOptions } from '@inference-shield/upstream';
import {
  createLlmStandin,
  type LlmStandin,
  type LlmStandinOptions,
} from '../../../apps/llm-standin/src/llm-standin.server.js';
import { CaptureLogger, startApp, testPki, type TestApp } from '../../support/harness.js';

export const API_KEY = 'sk-standin-relay-test-key-0001';
export const TRUST_DOMAIN = 'shield.local';

/** An audit sink that keeps the events and their JSON lines. */
export class CaptureSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  readonly lines: string[] = [];
  record(event: AuditEvent): void {
    this.events.push(event);
    this.lines.push(JSON.stringify(event));
  }
  /** The relay's usage events (not the guard's access decisions). */
  usage(): Record<string, unknown>[] {
    return this.events.filter((e) => (e as { event?: unknown }).event === 'llm.usage') as unknown as Record<
      string,
      unknown
    >[];
  }
}

/** A running stand-in with the PKI and API-key file the app's UpstreamModule reads. */
export interface StandinSetup {
  readonly pki: TestPki;
  readonly standin: LlmStandin;
  readonly keyFile: string;
  /** `UpstreamModule` options of one upstream pointing at the stand-in. */
  upstream(extra?: Record<string, unknown>): UpstreamModuleOptions['upstreams'][string];
}

export async function startStandin(
  options: Partial<LlmStandinOptions> = {},
  pki?: TestPki,
): Promise<StandinSetup> {
  const p = pki ?? (await testPki('relay'));
  const keyFile = join(p.dir, 'llm-api-key');
  writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
  const standin = await createLlmStandin({
    cert: p.server.cert,
    key: p.server.key,
    ca: p.ca.cert,
    port: 0,
    apiKeys: [API_KEY],
    recordRequests: true,
    ...options,
  });
  return {
    pki: p,
    standin,
    keyFile,
    upstream: (extra = {}) => ({
      baseUrl: `${standin.url}/v1`,
      ca: { file: p.ca.cert },
      clientCertificate: { cert: p.client.cert, key: p.client.key, watch: false },
      apiKey: { file: keyFile },
      ...extra,
    }),
  };
}

/** The fixture app: identity (mTLS workloads, and OIDC when given), upstreams, the relay. */
export function relayAppModule(opts: {
  upstream: UpstreamModuleOptions;
  relay: LlmRelayModuleOptions | (() => LlmRelayModuleOptions);
  identity?: Partial<IdentityModuleOptions>;
  audit: AuditSink;
}): DynamicModule {
  @Module({})
  class RelayFixtureModule {}
  const relay = typeof opts.relay === 'function' ? opts.relay : () => opts.relay as LlmRelayModuleOptions;
  return {
    module: RelayFixtureModule,
    imports: [
      IdentityModule.forRoot({
        mtls: { trustDomains: [TRUST_DOMAIN] },
        audit: { sink: opts.audit },
        ...opts.identity,
      }),
      UpstreamModule.forRoot({
        ...opts.upstream,
        ...(opts.upstream.callerAssertion === undefined
          ? {}
          : {
              callerAssertion: {
                ...opts.upstream.callerAssertion,
                caller: (req: object) => {
                  const p = principalOf(req);
                  return p && { subject: p.subject, issuer: p.issuer, scopes: p.scopes, method: p.method };
                },
              },
            }),
      }),
      LlmRelayModule.forRootAsync({ useFactory: relay }),
    ],
  };
}

/** Starts the fixture app behind the real bootstrap, mTLS optional (workloads and tokens). */
export async function startRelayApp(
  module: DynamicModule,
  pki: TestPki,
  logger = new CaptureLogger(),
): Promise<TestApp> {
  return startApp(module, { pki, mtls: 'optional', logger });
}

/** A workload's client certificate with this SPIFFE ID, from the PKI's CA. */
export function workload(pki: TestPki, path: string): Promise<IssuedCertificate> {
  return pki.ca.authority.issueClient({ spiffeId: `spiffe://${TRUST_DOMAIN}/${path}`, commonName: path });
}

/**
 * The real `openai` SDK against the relay: as an mTLS workload (`client`) or with an access token
 * (`token`, sent as the SDK's API key). For a workload the SDK's own `Authorization` (it insists on
 * an API key) is dropped, since the guard would check it as a token.
 */
export function sdk(
  app: TestApp,
  who: { client?: IssuedCertificate; token?: string; headers?: Record<string, string> },
): OpenAI & { close(): Promise<void> } {
  const agent = new Agent({
    connect: {
      ca: app.ca,
      servername: 'localhost',
      ...(who.client ? { cert: who.client.certPem, key: who.client.keyPem } : {}),
    },
  });
  const fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    if (who.token === undefined) headers.delete('authorization');
    for (const [k, v] of Object.entries(who.headers ?? {})) headers.set(k, v);
    const i: UndiciRequestInit = {
      ...(init as UndiciRequestInit),
      headers: Object.fromEntries(headers.entries()),
      dispatcher: agent,
    };
    return undiciFetch(
      String(input instanceof Request ? input.url : input),
      i,
    ) as unknown as Promise<Response>;
  };
  const client = new OpenAI({
    baseURL: `${app.url}/v1`,
    apiKey: who.token ?? 'unused-mtls-caller',
    fetch,
    maxRetries: 0,
    timeout: 30_000,
  });
  return Object.assign(client, { close: () => agent.close() });
}
