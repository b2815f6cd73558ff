import { describe, expect, it } from 'vitest';
import { ShieldError, toHttpResponse } from '@inference-shield/core/internal';
import { challengeParamsOf } from './resource-metadata.route.js';
import type { ResolvedResourceMetadataOptions } from './resource-metadata-options.interface.js';

const URL_ = 'https://api.example/.well-known/oauth-protected-resource/v1';
const metadata = { url: URL_ } as ResolvedResourceMetadataOptions;
const rm = `resource_metadata="${URL_}"`;

describe('challengeParamsOf + toHttpResponse: resource_metadata on every challenge (RFC 9728 §5.1)', () => {
  it.each([
    ['no token', new ShieldError('ERR_TOKEN_MISSING'), `Bearer ${rm}`],
    [
      'a bad token',
      new ShieldError('ERR_TOKEN_EXPIRED'),
      `Bearer error="invalid_token", error_description="ERR_TOKEN_EXPIRED", ${rm}`,
    ],
    [
      'an inactive opaque token',
      new ShieldError('ERR_TOKEN_INACTIVE'),
      `Bearer error="invalid_token", error_description="ERR_TOKEN_INACTIVE", ${rm}`,
    ],
    [
      'a missing scope (403)',
      new ShieldError('ERR_INSUFFICIENT_SCOPE', { scope: 'models:infer' }),
      `Bearer error="insufficient_scope", scope="models:infer", ${rm}`,
    ],
    [
      'a DPoP refusal: both challenges carry it',
      new ShieldError('ERR_DPOP_PROOF_INVALID', { dpop: { algs: 'ES256' } }),
      `Bearer ${rm}, DPoP error="invalid_dpop_proof", error_description="ERR_DPOP_PROOF_INVALID", algs="ES256", ${rm}`,
    ],
  ])('%s', (_name, error, expected) => {
    expect(toHttpResponse(error, challengeParamsOf(metadata)).headers['WWW-Authenticate']).toBe(expected);
  });

  it('nothing is added without resourceMetadata, and no challenge appears on a 503', () => {
    expect(
      toHttpResponse(new ShieldError('ERR_TOKEN_MISSING'), challengeParamsOf(undefined)).headers,
    ).toEqual({
      'WWW-Authenticate': 'Bearer',
    });
    expect(
      toHttpResponse(new ShieldError('ERR_INTROSPECTION_UNAVAILABLE'), challengeParamsOf(metadata)).headers,
    ).toEqual({});
  });
});
