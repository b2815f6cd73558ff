import type { Logger } from '@nestjs/common';
import { isShieldError, ShieldError } from '@inference-shield/core/internal';
import type { ResolvedIdentityOptions } from './identity-options.interface.js';
import type { ShieldPrincipal } from './principal.interface.js';

/**
 * Runs the application's `user.resolve` hook for a verified principal and stores its result on
 * `request[user.property]`. Returns the refusal when there is none to store: `undefined`/`null` is
 * `ERR_USER_UNKNOWN`; a thrown `ShieldError` is kept; anything else thrown becomes
 * `ERR_USER_RESOLUTION_FAILED`, logged by error name only (its message may quote claims or
 * database details, which neither the client nor the log gets).
 */
export async function resolveUserOf(
  user: NonNullable<ResolvedIdentityOptions['user']>,
  principal: ShieldPrincipal,
  request: object,
  logger: Logger,
): Promise<ShieldError | undefined> {
  let resolved: unknown;
  try {
    resolved = await user.resolve(principal, request);
  } catch (err) {
    if (isShieldError(err)) return err;
    logger.error(`user.resolve failed: ${err instanceof Error ? err.name : typeof err}`);
    return new ShieldError('ERR_USER_RESOLUTION_FAILED', { cause: err });
  }
  if (resolved === undefined || resolved === null) return new ShieldError('ERR_USER_UNKNOWN');
  (request as Record<string, unknown>)[user.property] = resolved;
  return undefined;
}
