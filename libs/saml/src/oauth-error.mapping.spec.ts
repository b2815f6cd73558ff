import { describe, expect, it } from 'vitest';
import { ShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
import { toOAuthErrorResponse } from './oauth-error.mapping.js';

describe('toOAuthErrorResponse (RFC 6749 §5.2, RFC 7522 §3.1)', () => {
  it.each<[ShieldErrorCode, number, string]>([
    ['ERR_SAML_SIGNATURE_INVALID', 400, 'invalid_grant'],
    ['ERR_SAML_REPLAY', 400, 'invalid_grant'],
    ['ERR_SAML_TOO_LARGE', 400, 'invalid_grant'],
    ['ERR_SAML_DOCTYPE_FORBIDDEN', 400, 'invalid_grant'],
    ['ERR_SAML_GRANT_INVALID', 400, 'invalid_request'],
    ['ERR_SAML_GRANT_TYPE_UNSUPPORTED', 400, 'unsupported_grant_type'],
    ['ERR_SAML_SCOPE_INVALID', 400, 'invalid_scope'],
    ['ERR_UNSUPPORTED_MEDIA_TYPE', 400, 'invalid_request'],
    ['ERR_BODY_TOO_LARGE', 400, 'invalid_request'],
    ['ERR_NOT_READY', 503, 'temporarily_unavailable'],
    ['ERR_INTERNAL', 500, 'server_error'],
  ])('%s → %i %s', (code, status, error) => {
    const r = toOAuthErrorResponse(new ShieldError(code, { detail: 'secret detail' }));
    expect(r.status).toBe(status);
    expect(r.body).toMatchObject({ error, code });
    expect(r.headers).toEqual({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    expect(JSON.stringify(r)).not.toContain('secret detail');
  });

  it('answers an unknown error as server_error without its message', () => {
    const r = toOAuthErrorResponse(new Error('<saml:Assertion>...'));
    expect(r).toMatchObject({ status: 500, body: { error: 'server_error', code: 'ERR_INTERNAL' } });
    expect(JSON.stringify(r)).not.toContain('Assertion');
  });
});
