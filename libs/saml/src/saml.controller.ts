import {
  Body,
  Controller,
  Get,
  Header,
  Headers,
  HttpCode,
  Post,
  Query,
  Redirect,
  UseFilters,
} from '@nestjs/common';
import { ShieldError, ShieldExceptionFilter } from '@inference-shield/core';
import { Consumes } from '@inference-shield/https';
import { Public } from '@inference-shield/identity';
import { OAuthTokenExceptionFilter } from './oauth-token-exception.filter.js';
import type { SamlJwks } from './saml-token.signer.js';
import { SamlTokenSigner } from './saml-token.signer.js';
import { SamlService } from './saml.service.js';

type Form = Record<string, unknown> | undefined;

/** SAML bindings and RFC 6749 §3.2 both send forms: anything else is refused before it is read. */
function requireForm(contentType: unknown, body: Form): Record<string, unknown> {
  const type = typeof contentType === 'string' ? (contentType.split(';')[0] ?? '').trim().toLowerCase() : '';
  if (type !== 'application/x-www-form-urlencoded' || body === undefined || typeof body !== 'object') {
    throw new ShieldError('ERR_UNSUPPORTED_MEDIA_TYPE');
  }
  return body;
}

/**
 * The SAML routes. They authenticate their callers themselves (a signed assertion), so they are
 * public to the identity guard; each one bounds what it reads. Refusals go through the catalogue
 * mapping even in an application without `IdentityModule` (whose global filter does the same).
 */
@Public()
@UseFilters(ShieldExceptionFilter)
@Controller()
export class SamlController {
  constructor(
    private readonly saml: SamlService,
    private readonly signer: SamlTokenSigner,
  ) {}

  /** SP-initiated SSO: redirects the browser to the IdP with an AuthnRequest (HTTP-Redirect binding). */
  @Get('saml/login')
  @Redirect()
  @Header('Cache-Control', 'no-store')
  async login(
    @Query('idp') idp: unknown,
    @Query('RelayState') relayState: unknown,
  ): Promise<{ url: string; statusCode: number }> {
    return { url: await this.saml.login(idp, relayState), statusCode: 302 };
  }

  /** Assertion consumer service (HTTP-POST binding): a verified response becomes a local access token. */
  @Post('saml/acs')
  // The HTTP-POST binding is a form. Declared, so the route still reads its form when the host app
  // turned Nest's body parsers off, and any other type is refused with 415 before the handler.
  @Consumes('application/x-www-form-urlencoded')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  async acs(
    @Headers('content-type') contentType: unknown,
    @Body() body: Form,
  ): Promise<Record<string, unknown>> {
    const form = requireForm(contentType, body);
    const { token, relayState } = await this.saml.acs(form['SAMLResponse'], form['RelayState']);
    return relayState === undefined ? { ...token } : { ...token, relay_state: relayState };
  }

  /** SP metadata, for the IdP administrator. */
  @Get('saml/metadata')
  @Header('Content-Type', 'application/samlmetadata+xml')
  metadata(): string {
    return this.saml.metadata;
  }

  /** The public key of the local tokens (RFC 7517), for verifiers other than this process. */
  @Get('saml/jwks')
  @Header('Content-Type', 'application/jwk-set+json')
  @Header('Cache-Control', 'public, max-age=300')
  jwks(): SamlJwks {
    return this.signer.jwks;
  }

  /** RFC 7522 SAML 2.0 bearer assertion grant; refusals in the RFC 6749 §5.2 shape. */
  @Post('oauth/token')
  @HttpCode(200)
  @UseFilters(OAuthTokenExceptionFilter)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  async token(
    @Headers('content-type') contentType: unknown,
    @Body() body: Form,
  ): Promise<Record<string, unknown>> {
    const form = requireForm(contentType, body);
    return { ...(await this.saml.grant(form['grant_type'], form['assertion'], form['scope'])) };
  }
}
