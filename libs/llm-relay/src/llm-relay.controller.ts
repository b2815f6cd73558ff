import type { ServerResponse } from 'node:http';
import { Body, Controller, Get, HttpCode, Param, Post, Req, Res, UseFilters } from '@nestjs/common';
import { Authenticated, RefusalBody } from '@inference-shield/identity';
import type { RelayEndpoint } from './llm-relay-options.interface.js';
import { LlmRelayService } from './llm-relay.service.js';
import { openAiRefusalBody } from './openai-error.js';
import { RelayExceptionFilter } from './relay-exception.filter.js';

/** Express's `res` (a `ServerResponse`) or Fastify's `reply` (hijacked, then `raw` written). */
type AnyResponse = ServerResponse | { readonly raw: ServerResponse; hijack(): unknown };

function rawOf(res: AnyResponse): ServerResponse {
  if ('raw' in res) {
    // Fastify: the relay writes the socket itself (streams); tell Fastify not to.
    res.hijack();
    return res.raw;
  }
  return res;
}

/**
 * OpenAI's routes, behind the identity guard (any authenticated caller reaches them; each model's
 * access rules decide the rest). Errors are answered in OpenAI's shape by a filter bound here only,
 * and so are the header-only refusals IdentityModule answers before the body is read.
 */
@Controller('v1')
@Authenticated()
@UseFilters(RelayExceptionFilter)
@RefusalBody(openAiRefusalBody)
export class LlmRelayController {
  constructor(private readonly relay: LlmRelayService) {}

  @Get('models')
  list(@Req() req: object): ReturnType<LlmRelayService['list']> {
    return this.relay.list(req);
  }

  @Get('models/:id')
  model(@Req() req: object, @Param('id') id: string): ReturnType<LlmRelayService['get']> {
    return this.relay.get(req, id);
  }

  @Post('chat/completions')
  @HttpCode(200)
  chat(@Req() req: object, @Res() res: AnyResponse, @Body() body: unknown): Promise<void> {
    return this.forward('chat', req, res, body);
  }

  @Post('responses')
  @HttpCode(200)
  responses(@Req() req: object, @Res() res: AnyResponse, @Body() body: unknown): Promise<void> {
    return this.forward('responses', req, res, body);
  }

  @Post('embeddings')
  @HttpCode(200)
  embeddings(@Req() req: object, @Res() res: AnyResponse, @Body() body: unknown): Promise<void> {
    return this.forward('embeddings', req, res, body);
  }

  private forward(endpoint: RelayEndpoint, req: object, res: AnyResponse, body: unknown): Promise<void> {
    return this.relay.relay(endpoint, req, rawOf(res), body);
  }
}
