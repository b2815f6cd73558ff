import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { principalOf } from './principal.store.js';

export { principalOf };

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
