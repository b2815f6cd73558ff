import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { PRINCIPAL_KEY } from './identity.constants.js';
import type { ShieldPrincipal } from './principal.interface.js';

/** Reads the principal the guard attached (`undefined` on `@Public()` routes). */
export function principalOf(request: object): ShieldPrincipal | undefined {
  return (request as { [PRINCIPAL_KEY]?: ShieldPrincipal })[PRINCIPAL_KEY];
}

/**
 * Handler parameter: the verified, frozen {@link ShieldPrincipal} of the caller.
 *
 * @example
 * @Post('infer') @RequireScopes('models:infer')
 * infer(@Principal() caller: ShieldPrincipal) { ... }
 */
export const Principal = createParamDecorator((_data: unknown, ctx: ExecutionContext) =>
  principalOf(ctx.switchToHttp().getRequest<object>()),
);
