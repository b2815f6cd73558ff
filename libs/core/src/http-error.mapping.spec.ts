import { describe, expect, it } from 'vitest';
import { HttpException, PayloadTooLargeException } from '@nestjs/common';
import { ERROR_CATALOGUE, ShieldError, toHttpResponse, type ShieldErrorCode } from '@inference-shield/core';

describe('toHttpResponse', () => {
  it.each(Object.keys(ERROR_CATALOGUE) as ShieldErrorCode[])(
    '%s maps to its catalogue status and reason',
    (code) => {
      const res = toHttpResponse(new ShieldError(code, { cause: new Error('eyJhbGciOi.secret.token') }));
      expect(res.status).toBe(ERROR_CATALOGUE[code].status);
      expect(res.body).toEqual({ code, message: ERROR_CATALOGUE[code].reason });
      expect(JSON.stringify(res)).not.toContain('eyJ');
    },
  );

  it('gives RFC 6750 challenges', () => {
    expect(toHttpResponse(new ShieldError('ERR_TOKEN_MISSING')).headers['WWW-Authenticate']).toBe('Bearer');
    expect(toHttpResponse(new ShieldError('ERR_TOKEN_EXPIRED')).headers['WWW-Authenticate']).toBe(
      'Bearer error="invalid_token", error_description="ERR_TOKEN_EXPIRED"',
    );
    const scope = toHttpResponse(new ShieldError('ERR_INSUFFICIENT_SCOPE', { scope: 'models:infer' }));
    expect(scope.status).toBe(403);
    expect(scope.headers['WWW-Authenticate']).toBe('Bearer error="insufficient_scope", scope="models:infer"');
    expect(scope.body.scope).toBe('models:infer');
  });

  it.each([
    [new PayloadTooLargeException(), 413, 'ERR_BODY_TOO_LARGE'],
    [new HttpException('nope', 404), 404, 'ERR_NOT_FOUND'],
    [Object.assign(new Error('request entity too large'), { status: 413 }), 413, 'ERR_BODY_TOO_LARGE'],
    [new Error('secret internal detail'), 500, 'ERR_INTERNAL'],
    ['a thrown string', 500, 'ERR_INTERNAL'],
  ])('maps foreign error %# to %i %s without its message', (err, status, code) => {
    const res = toHttpResponse(err);
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(JSON.stringify(res.body)).not.toMatch(/secret|nope|entity/);
  });
});

describe('exposed details', () => {
  it('sends the field-level detail of ERR_INVALID_INPUT only', () => {
    const input = toHttpResponse(
      new ShieldError('ERR_INVALID_INPUT', { detail: '"inputs[0].shape[1]" must be 8' }),
    );
    expect(input.body.detail).toBe('"inputs[0].shape[1]" must be 8');
    const token = toHttpResponse(new ShieldError('ERR_TOKEN_MALFORMED', { detail: 'segment 2 of eyJabc' }));
    expect(token.body).not.toHaveProperty('detail');
  });
});

describe('DPoP challenges (RFC 9449 §7.1)', () => {
  const dpop = { algs: 'ES256 EdDSA' };
  it.each<[ShieldErrorCode, string]>([
    ['ERR_TOKEN_MISSING', 'Bearer, DPoP algs="ES256 EdDSA"'],
    [
      'ERR_TOKEN_EXPIRED',
      'Bearer error="invalid_token", error_description="ERR_TOKEN_EXPIRED", DPoP algs="ES256 EdDSA"',
    ],
    [
      'ERR_DPOP_PROOF_REPLAYED',
      'Bearer, DPoP error="invalid_dpop_proof", error_description="ERR_DPOP_PROOF_REPLAYED", algs="ES256 EdDSA"',
    ],
    [
      'ERR_DPOP_NONCE_REQUIRED',
      'Bearer, DPoP error="use_dpop_nonce", error_description="ERR_DPOP_NONCE_REQUIRED", algs="ES256 EdDSA"',
    ],
    [
      'ERR_DPOP_TOKEN_AS_BEARER',
      'Bearer, DPoP error="invalid_token", error_description="ERR_DPOP_TOKEN_AS_BEARER", algs="ES256 EdDSA"',
    ],
    [
      'ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED',
      'Bearer, DPoP error="invalid_token", error_description="ERR_TOKEN_SENDER_CONSTRAINT_REQUIRED", algs="ES256 EdDSA"',
    ],
  ])('%s → %s', (code, challenge) => {
    const res = toHttpResponse(new ShieldError(code, { dpop }));
    expect(res.headers['WWW-Authenticate']).toBe(challenge);
    expect(res.headers).not.toHaveProperty('DPoP-Nonce');
  });

  it('sends the nonce as DPoP-Nonce; a 403 and a 503 get no DPoP challenge', () => {
    const nonce = toHttpResponse(
      new ShieldError('ERR_DPOP_NONCE_REQUIRED', { dpop: { ...dpop, nonce: 'n0nce' } }),
    );
    expect(nonce.headers['DPoP-Nonce']).toBe('n0nce');
    const scope = toHttpResponse(new ShieldError('ERR_INSUFFICIENT_SCOPE', { scope: 'a', dpop }));
    expect(scope.headers['WWW-Authenticate']).toBe('Bearer error="insufficient_scope", scope="a"');
    const store = toHttpResponse(new ShieldError('ERR_DPOP_REPLAY_STORE_UNAVAILABLE', { dpop }));
    expect(store.status).toBe(503);
    expect(store.headers).toEqual({});
  });
});
