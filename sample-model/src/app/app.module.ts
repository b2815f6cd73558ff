import { Module, type DynamicModule } from '@nestjs/common';
import { IdentityModule, principalOf } from '@inference-shield/identity';
import { LlmRelayModule } from '@inference-shield/llm-relay';
import { UpstreamModule } from '@inference-shield/upstream';
import { SampleModelModule } from '../inference/sample-model.module.js';
import type { SampleConfig } from './sample-config.js';

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
        }),
        SampleModelModule.forRoot({}),
        UpstreamModule.forRoot({
          upstreams: {
            [LLM_UPSTREAM]: {
              baseUrl: config.llm.baseUrl,
              ca: { file: config.llm.ca },
              clientCertificate: { cert: config.llm.clientCert, key: config.llm.clientKey, watch: true },
              apiKey: { file: config.llm.apiKeyFile },
            },
          },
          callerAssertion: {
            issuer: config.serviceId,
            caller: (req) => {
              const p = principalOf(req);
              return p && { subject: p.subject, issuer: p.issuer, scopes: p.scopes, method: p.method };
            },
          },
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
            perPrincipal: { requestsPerMinute: 60, tokensPerMinute: 40_000, tokensPerDay: 1_000_000 },
          },
        }),
      ],
    };
  }
}
