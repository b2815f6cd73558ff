import { ERROR_CATALOGUE, type ShieldErrorCode } from './error-codes.js';

/** Extra, non-secret facts a refusal may carry to the response (for example the missing scope). */
export interface ShieldErrorDetails {
  /** RFC 6750 `scope` for `insufficient_scope` refusals. */
  readonly scope?: string;
  /** A short, safe detail for operators' logs; never sent to clients, never a credential. */
  readonly detail?: string;
}

/**
 * The base of every refusal. `code` is stable; `message` is the catalogue's short reason (safe to
 * show); `cause` keeps the library error for logs and is never sent to a client.
 *
 * @example
 * throw new ShieldError('ERR_TOKEN_EXPIRED', { cause: err });
 */
export class ShieldError extends Error {
  override readonly name = 'ShieldError';
  readonly code: ShieldErrorCode;
  readonly details: ShieldErrorDetails;

  constructor(
    code: ShieldErrorCode,
    options: ShieldErrorDetails & { cause?: unknown; message?: string } = {},
  ) {
    super(options.message ?? ERROR_CATALOGUE[code].reason, { cause: options.cause });
    this.code = code;
    const details: { scope?: string; detail?: string } = {};
    if (options.scope !== undefined) details.scope = options.scope;
    if (options.detail !== undefined) details.detail = options.detail;
    this.details = Object.freeze(details);
  }

  /** The HTTP status the catalogue gives this code. */
  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }
}

/** True for a `ShieldError`, across module copies (checks the shape, not only the prototype). */
export function isShieldError(err: unknown): err is ShieldError {
  return (
    err instanceof ShieldError ||
    (err instanceof Error &&
      (err as { name?: unknown }).name === 'ShieldError' &&
      typeof (err as { code?: unknown }).code === 'string')
  );
}
