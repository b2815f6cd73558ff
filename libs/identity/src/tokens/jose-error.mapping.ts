import { isShieldError, ShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';

/**
 * Turns whatever jose threw while verifying an untrusted token into a typed refusal. jose's
 * message never reaches a client (it can name claims and values); it stays as `cause`.
 * A plain `TypeError` from jose means the key cannot be used for this algorithm (for example
 * an RSA key under 2048 bits): a refusal, never a 500. Anything else unexpected from the
 * signature step is also a refusal (fail closed), with the cause kept for logs.
 */
export function translateJoseError(err: unknown): ShieldError {
  if (isShieldError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refuse('ERR_TOKEN_SIGNATURE_INVALID', err);
    case 'ERR_JWT_EXPIRED':
      return refuse('ERR_TOKEN_EXPIRED', err);
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return refuse(claimCode(err), err);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refuse('ERR_TOKEN_ALG_NOT_ALLOWED', err);
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return refuse('ERR_TOKEN_MALFORMED', err);
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return refuse('ERR_TOKEN_KEY_NOT_FOUND', err);
    case 'ERR_JWK_INVALID':
    case 'ERR_JWKS_INVALID':
      return refuse('ERR_TOKEN_KEY_UNUSABLE', err);
    default:
      if (err instanceof TypeError) return refuse('ERR_TOKEN_KEY_UNUSABLE', err);
      return refuse('ERR_TOKEN_SIGNATURE_INVALID', err);
  }
}

function claimCode(err: unknown): ShieldErrorCode {
  const { claim, reason } = err as { claim?: unknown; reason?: unknown };
  if (reason === 'check_failed') {
    switch (claim) {
      case 'nbf':
        return 'ERR_TOKEN_NOT_YET_VALID';
      case 'iat':
        return 'ERR_TOKEN_ISSUED_IN_FUTURE';
      case 'aud':
        return 'ERR_TOKEN_AUDIENCE_INVALID';
      case 'iss':
        return 'ERR_TOKEN_ISSUER_UNKNOWN';
      case 'typ':
        return 'ERR_TOKEN_TYPE_INVALID';
    }
  }
  // Missing required claims, `exp`/`nbf`/`iat` that are not numbers.
  return 'ERR_TOKEN_CLAIM_INVALID';
}

function refuse(code: ShieldErrorCode, err: unknown): ShieldError {
  // jose's claim errors carry the whole claims set (`payload`), and its messages can quote
  // values: the cause we keep names only the jose code, the error class and the claim.
  const { code: joseCode, claim } = (err ?? {}) as { code?: unknown; claim?: unknown };
  const what = typeof joseCode === 'string' ? joseCode : err instanceof Error ? err.name : typeof err;
  const detail = typeof claim === 'string' ? `${what} (claim "${claim}")` : what;
  return new ShieldError(code, { cause: new Error(detail), detail });
}
