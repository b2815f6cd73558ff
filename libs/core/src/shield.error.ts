import { ERROR_CATALOGUE, type ShieldErrorCode } from './error-codes.js';

/** Extra, non-secret facts a refusal may carry to the response (for example the missing scope). */
export interface ShieldErrorDetails {
  /** RFC 6750 `scope` for `insufficient_scope` refusals. */
  readonly scope?: string;
  /** A short, safe detail for operators' logs; never sent to clients, never a credential. */
  readonly detail?: string;
  /**
   * RFC 9449 §7.1: the refused request could have used DPoP. A `DPoP` challenge naming `algs`
   * (space-separated) joins a 401's `WWW-Authenticate`, and `nonce` is sent as `DPoP-Nonce`.
   */
  readonly dpop?: { readonly algs: string; readonly nonce?: string };
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
    const details: { scope?: string; detail?: string; dpop?: ShieldErrorDetails['dpop'] } = {};
    if (options.scope !== undefined) details.scope = options.scope;
    if (options.detail !== undefined) details.detail = options.detail;
    if (options.dpop !== undefined) details.dpop = Object.freeze({ ...options.dpop });
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
