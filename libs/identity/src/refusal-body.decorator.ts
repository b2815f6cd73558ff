import { SetMetadata } from '@nestjs/common';
import type { ShieldErrorCode } from '@inference-shield/core';

/** Metadata key of {@link RefusalBody}. */
export const SHIELD_REFUSAL_BODY_METADATA = 'shield:identity:refusal-body';

/** What a refusal body is made from: never the credential, never a library's message. */
export interface RefusalFacts {
  readonly status: number;
  readonly code: ShieldErrorCode;
  /** The catalogue's short reason (or its detail), as the default body gives it. */
  readonly message: string;
}

/** Builds the JSON body of a refusal in the shape these routes' clients read. */
export type RefusalBodyRenderer = (facts: RefusalFacts) => unknown;

/**
 * The body of the refusals IdentityModule answers itself on these routes, before any exception
 * filter can run: the header-only refusal of a request that announces a body (a missing or invalid
 * credential, refused before the body is read). Status and headers (`WWW-Authenticate`) stay the
 * catalogue's; only the JSON body changes. Refusals thrown by the guard go through the route's
 * exception filters as usual, so a route with its own filter uses both.
 *
 * @example
 * // an OpenAI-compatible controller: the SDK reads `{ error: { message, type, param, code } }`
 * @RefusalBody(({ code, message }) => ({ error: { message, type: 'authentication_error', param: null, code } }))
 */
export function RefusalBody(render: RefusalBodyRenderer): ClassDecorator & MethodDecorator {
  if (typeof render !== 'function') throw new TypeError('RefusalBody() needs a function');
  return SetMetadata(SHIELD_REFUSAL_BODY_METADATA, render);
}
