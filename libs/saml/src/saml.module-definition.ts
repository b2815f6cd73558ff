import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { SamlModuleOptions } from './saml-options.interface.js';

export const {
  ConfigurableModuleClass: SamlConfigurableModule,
  MODULE_OPTIONS_TOKEN: SAML_MODULE_OPTIONS,
  OPTIONS_TYPE: SAML_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: SAML_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SamlModuleOptions>({ moduleName: 'ShieldSaml' })
  .setClassMethodName('forRoot')
  // Global by default, so `IdentityModule.forRootAsync` can inject `SamlTokenSigner` for `samlLocalIssuer`.
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
