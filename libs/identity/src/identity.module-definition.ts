import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { IdentityModuleOptions } from './identity-options.interface.js';

/**
 * `IdentityModule.forRoot(options)` and `forRootAsync({ imports, useFactory, inject })`, global by
 * default (`isGlobal: false` to scope it; the guard is application-wide either way).
 */
export const {
  ConfigurableModuleClass: ConfigurableIdentityModule,
  MODULE_OPTIONS_TOKEN: RAW_IDENTITY_OPTIONS,
  OPTIONS_TYPE: IDENTITY_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: IDENTITY_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<IdentityModuleOptions>({ moduleName: 'ShieldIdentity' })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
