import { Body, ConflictException, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { Principal, Public, RequireScopes, type ShieldPrincipal } from '@inference-shield/identity';

/** A model route as a user writes it: one public probe, one scoped route, one that fails its own way. */
@Controller()
export class ModelsController {
  @Get('health')
  @Public()
  health(): { status: string } {
    return { status: 'ok' };
  }

  @Post('models/demo/infer')
  @HttpCode(200)
  @RequireScopes('models:infer')
  infer(
    @Principal() caller: ShieldPrincipal,
    @Body() body: { inputs?: number[] },
  ): { model: string; sum: number; subject: string; scopes: readonly string[] } {
    const sum = (body.inputs ?? []).reduce((a, b) => a + b, 0);
    return { model: 'demo', sum, subject: caller.subject, scopes: caller.scopes };
  }

  @Post('models/demo/load')
  @RequireScopes('models:infer')
  load(): never {
    // The app's own error: Shield must leave its status and message alone.
    throw new ConflictException('model already loaded');
  }
}
