import { generateServiceProviderMetadata } from '@node-saml/node-saml';
import type { ResolvedSamlOptions } from './saml-options.interface.js';

/**
 * Our SP metadata (SAML metadata §2.4.4): entity ID, the HTTP-POST assertion consumer service and
 * `WantAssertionsSigned="true"`. Built once at start-up; it holds no key (we sign no requests and
 * decrypt nothing).
 */
export function buildSpMetadata(options: ResolvedSamlOptions): string {
  return generateServiceProviderMetadata({
    issuer: options.serviceProvider.entityId,
    callbackUrl: options.serviceProvider.acsUrl,
    identifierFormat: null,
    wantAssertionsSigned: true,
  });
}
