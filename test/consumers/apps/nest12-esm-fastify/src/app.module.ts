import { readFileSync } from 'node:fs';
import { Module } from '@nestjs/common';
import { IdentityModule } from '@inference-shield/identity';
import { ModelsController } from './models.controller.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

@Module({
  imports: [
    IdentityModule.forRoot({
      oidc: {
        issuers: [
          {
            issuer: env('OIDC_ISSUER'),
            audience: env('OIDC_AUDIENCE'),
            // The dev IdP's certificate comes from the dev CA, not from a public root.
            ca: { pem: readFileSync(env('OIDC_CA')) },
          },
        ],
      },
    }),
  ],
  controllers: [ModelsController],
})
export class AppModule {}
