import { Module } from '@nestjs/common';
import { LoggerSamlAuditSink } from './saml-audit.js';
import type { ResolvedSamlOptions } from './saml-options.interface.js';
import { resolveSamlOptions } from './saml-options.js';
import { SamlTokenSigner } from './saml-token.signer.js';
import { SamlValidator } from './saml-validator.js';
import { SamlController } from './saml.controller.js';
import { SAML_AUDIT_SINK, SAML_OPTIONS } from './saml.constants.js';
import { SAML_MODULE_OPTIONS, SamlConfigurableModule } from './saml.module-definition.js';
import { SamlService } from './saml.service.js';

/**
 * SAML 2.0 as a way in: browser SSO (`GET /saml/login`, `POST /saml/acs`, `GET /saml/metadata`)
 * and the RFC 7522 bearer grant (`POST /oauth/token`), both ending in a short-lived local access
 * token (`GET /saml/jwks`) that `IdentityModule` accepts as method `saml`. Options are checked in
 * `forRoot`/`forRootAsync`; a bad one stops `app.init()`.
 *
 * @example
 * SamlModule.forRoot({ serviceProvider: {...}, identityProviders: [...], tokens: {...} })
 */
@Module({
  controllers: [SamlController],
  providers: [
    {
      provide: SAML_OPTIONS,
      useFactory: (raw: unknown) => resolveSamlOptions(raw),
      inject: [SAML_MODULE_OPTIONS],
    },
    {
      provide: SamlTokenSigner,
      useFactory: (o: ResolvedSamlOptions) => SamlTokenSigner.create(o),
      inject: [SAML_OPTIONS],
    },
    {
      provide: SamlValidator,
      useFactory: (o: ResolvedSamlOptions) => new SamlValidator(o),
      inject: [SAML_OPTIONS],
    },
    {
      provide: SAML_AUDIT_SINK,
      useFactory: (o: ResolvedSamlOptions) => o.audit.sink ?? new LoggerSamlAuditSink(),
      inject: [SAML_OPTIONS],
    },
    SamlService,
  ],
  exports: [SAML_OPTIONS, SamlTokenSigner, SamlValidator, SamlService],
})
export class SamlModule extends SamlConfigurableModule {}
