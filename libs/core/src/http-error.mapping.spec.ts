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
