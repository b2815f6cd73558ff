import { Module, type DynamicModule } from '@nestjs/common';
import { IdentityModule, principalOf } from '@inference-shield/identity';
import { UpstreamModule } from '@inference-shield/upstream';
import { ChatController } from '../chat/chat.controller.js';
import { CHAT_OPTIONS, LLM_UPSTREAM } from '../chat/chat.constants.js';
import { SampleModelModule } from '../inference/sample-model.module.js';
import type { SampleConfig } from './sample-config.js';

/** The trust domain of the dev PKI's workloads. */
export const SAMPLE_TRUST_DOMAIN = 'shield.local';

/**
 * The sample model server: KServe v2 inference and an LLM chat route, every route behind the
 * identity guard, the LLM reached over mTLS. Built only on the public entries of `libs/`.
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
      ],
      controllers: [ChatController],
      providers: [{ provide: CHAT_OPTIONS, useValue: Object.freeze({ model: config.llm.model }) }],
    };
  }
}
