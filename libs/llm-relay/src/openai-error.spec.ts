import { BadRequestException, NotFoundException } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { ShieldError, type ShieldErrorCode } from '@inference-shield/core';
import { relayError, toRelayHttpError } from './openai-error.js';

describe('toRelayHttpError: every failure in OpenAI shape', () => {
  it.each([
    ['ERR_TOKEN_MISSING', 401, 'authentication_error'],
    ['ERR_TOKEN_EXPIRED', 401, 'authentication_error'],
    ['ERR_INSUFFICIENT_SCOPE', 403, 'permission_error'],
    ['ERR_LLM_MODEL_NOT_FOUND', 404, 'invalid_request_error'],
    ['ERR_BODY_TOO_LARGE', 413, 'invalid_request_error'],
    ['ERR_LLM_REQUESTS_EXCEEDED', 429, 'requests'],
    ['ERR_LLM_TOKENS_EXCEEDED', 429, 'tokens'],
    ['ERR_UPSTREAM_CONNECT', 502, 'server_error'],
    ['ERR_UPSTREAM_TIMEOUT', 504, 'server_error'],
    ['ERR_BUDGET_STORE_UNAVAILABLE', 503, 'server_error'],
  ] as [ShieldErrorCode, number, string][])('%s → %i %s, code in error.code', (code, status, type) => {
    const out = toRelayHttpError(new ShieldError(code, { cause: new Error('SECRET cause') }));
    expect(out.status).toBe(status);
    expect(out.body).toEqual({ error: { message: expect.any(String), type, param: null, code } });
    expect(JSON.stringify(out.body)).not.toContain('SECRET');
  });

  it('a 401 keeps its challenge; a forbidden model is answered as an unknown one', () => {
    expect(toRelayHttpError(new ShieldError('ERR_TOKEN_EXPIRED')).headers['WWW-Authenticate']).toMatch(
      /^Bearer error="invalid_token"/,
    );
    expect(toRelayHttpError(new ShieldError('ERR_LLM_MODEL_FORBIDDEN')).body.error.code).toBe(
      'ERR_LLM_MODEL_NOT_FOUND',
    );
  });

  it('framework and unknown errors: their status, never their message', () => {
    expect(toRelayHttpError(new BadRequestException('SECRET')).status).toBe(400);
    expect(toRelayHttpError(new NotFoundException()).body.error.code).toBe('ERR_NOT_FOUND');
    const internal = toRelayHttpError(new Error('SECRET prompt text'));
    expect(internal.status).toBe(500);
    expect(JSON.stringify(internal.body)).not.toContain('SECRET');
  });

  it('relayError carries param, message and headers', () => {
    const e = relayError('ERR_LLM_TOKENS_EXCEEDED', { headers: { 'retry-after': '3' }, param: 'max_tokens' });
    expect(e).toMatchObject({ status: 429, headers: { 'retry-after': '3' } });
    expect(e.body.error).toMatchObject({
      param: 'max_tokens',
      code: 'ERR_LLM_TOKENS_EXCEEDED',
      type: 'tokens',
    });
  });
});
