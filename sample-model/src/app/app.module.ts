import { Module, type DynamicModule } from '@nestjs/common';
import { IdentityModule, principalOf, RedisDpopReplayStore } from '@inference-shield/identity';
import { LlmRelayModule, RedisBudgetStore } from '@inference-shield/llm-relay';
import { x509TlsSource, type WorkloadApiSource } from '@inference-shield/spiffe';
import { UpstreamModule, type UpstreamModuleOptions, type UpstreamOptions } from '@inference-shield/upstream';
import { Redis } from 'ioredis';
import { SampleModelModule } from '../inference/sample-model.module.js';
import type { SampleConfig } from './sample-config.js';
import { SampleSpiffeModule, WORKLOAD_API_SOURCE } from './spiffe-source.module.js';

/**
 * The hosted LLM upstream, with no static credential by default. Without a Workload API: the
 * dev-PKI client certificate, exchanged at the LLM's token endpoint for a short-lived token
 * (OpenAI's X.509 flow). With one: the X.509-SVID as client certificate, and a JWT-SVID exchanged
 * for the token (RFC 8693). A static key only when SHIELD_LLM_API_KEY_FILE names one.
 */
function upstreamOptions(config: SampleConfig, spiffe?: WorkloadApiSource): UpstreamModuleOptions {
  const llm = config.llm;
  const tls: Partial<UpstreamOptions> =
    spiffe !== undefined
      ? { clientCertificateSource: x509TlsSource(spiffe, { trust: false }) }
      : { clientCertificate: { cert: llm.clientCert, key: llm.clientKey, watch: true } };
  let credential: Partial<UpstreamOptions>;
  if (llm.apiKeyFile !== undefined) credential = { apiKey: { file: llm.apiKeyFile } };
  else if (spiffe !== undefined)
    credential = {
      credential: {
        tokenExchange: {
          tokenEndpoint: llm.tokenUrl,
          audience: llm.tokenAudience,
          subjectToken: { provider: (audience) => spiffe.jwtSvid(audience ?? llm.tokenAudience) },
        },
      },
    };
  else credential = { credential: { certificateExchange: { tokenEndpoint: llm.tokenUrl } } };
  return {
    upstreams: { [LLM_UPSTREAM]: { baseUrl: llm.baseUrl, ca: { file: llm.ca }, ...tls, ...credential } },
    callerAssertion: {
      issuer: config.serviceId,
      caller: (req) => {
        const p = principalOf(req);
        return p && { subject: p.subject, issuer: p.issuer, scopes: p.scopes, method: p.method };
      },
    },
  };
}

/** The trust domain of the dev PKI's workloads. */
export const SAMPLE_TRUST_DOMAIN = 'shield.local';

/** The upstream name of the hosted LLM. */
const LLM_UPSTREAM = 'llm';

/**
 * The sample model server: KServe v2 inference and OpenAI's `/v1` routes relayed to the hosted LLM
 * (over mTLS), every route behind the identity guard. Built only on the public entries of `libs/`.
 */
@Module({})
export class AppModule {
  static forConfig(config: SampleConfig): DynamicModule {
    // Replicas share budgets and the DPoP proofs seen through one Redis (SHIELD_REDIS_URL). Both
    // stores bound each command in time and refuse the request (503) when Redis cannot answer.
    const redis =
      config.redisUrl === undefined ? undefined : new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
    return {
      module: AppModule,
      imports: [
        IdentityModule.forRoot({
          oidc: {
            issuers: [
              {
                issuer: config.oidc.issuer,
                audience: config.oidc.audience,
                ca: { file: config.oidc.ca },
                // RFC 9068: only access tokens, never ID tokens replayed as access tokens.
                requireAccessTokenType: true,
              },
            ],
          },
          mtls: { trustDomains: [SAMPLE_TRUST_DOMAIN] },
          ...(config.dpopOrigin === undefined
            ? {}
            : {
                dpop: {
                  origin: config.dpopOrigin,
                  ...(redis === undefined ? {} : { replayStore: new RedisDpopReplayStore(redis) }),
                },
              }),
        }),
        // /health/ready reports the LLM's reachability; SHIELD_LLM_READINESS=required makes it count.
        SampleModelModule.forRoot({ upstreamReadiness: config.llm.readiness }),
        config.spiffe === undefined
          ? UpstreamModule.forRoot(upstreamOptions(config))
          : UpstreamModule.forRootAsync({
              upstreamNames: [LLM_UPSTREAM],
              imports: [SampleSpiffeModule.forAddress(config.spiffe.socket)],
              inject: [WORKLOAD_API_SOURCE],
              useFactory: (source: WorkloadApiSource) => upstreamOptions(config, source),
            }),
        // `/v1/models`, `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings` (docs/llm-relay.md).
        LlmRelayModule.forRoot({
          upstreams: { [LLM_UPSTREAM]: { assertCaller: true } },
          models: {
            [config.llm.model]: { upstream: LLM_UPSTREAM, endpoints: ['chat', 'responses'] },
            'standin-embed': { upstream: LLM_UPSTREAM, endpoints: ['embeddings'] },
          },
          // Tokens with llm:chat, and the demo workload by its certificate.
          access: {
            '*': [{ scopes: ['llm:chat'] }, { spiffeIds: [`spiffe://${SAMPLE_TRUST_DOMAIN}/demo`] }],
          },
          budgets: {
            ...(redis === undefined ? {} : { store: new RedisBudgetStore({ client: redis }) }),
            perPrincipal: {
              requestsPerMinute: config.llmRequestsPerMinute,
              tokensPerMinute: 40_000,
              tokensPerDay: 1_000_000,
            },
          },
        }),
      ],
    };
  }
}
