import { describe, expect, it } from 'vitest';
import { resolveUpstreamCredential, TOKEN_TYPE_JWT } from './credential-options.resolver.js';

const F = 'upstreams.llm.credential';
const ORIGIN = 'https://llm.example';
const TOKEN = 'https://idp.example/token';
const env = { CLIENT_SECRET: 'a-dev-secret-of-enough-length' };
const resolve = (raw: unknown, cert = true) => resolveUpstreamCredential(F, raw, cert, ORIGIN, env);

describe('resolveUpstreamCredential', () => {
  it('fills the defaults of a client credentials grant', () => {
    const r = resolve({
      clientCredentials: { tokenEndpoint: TOKEN, clientAuth: { method: 'tls_client_auth', clientId: 'svc' } },
    });
    expect(r).toMatchObject({
      kind: 'clientCredentials',
      issuer: 'https://idp.example',
      encoding: 'form',
      timeoutMs: 10_000,
      parameters: {},
      clientAuth: { method: 'tls_client_auth', clientId: 'svc' },
      presentsClientCertificate: true,
    });
  });

  it('reads an opted-in client secret from its env var, never guessing it', () => {
    const r = resolve({
      clientCredentials: {
        tokenEndpoint: TOKEN,
        clientAuth: {
          method: 'client_secret_basic',
          clientId: 'svc',
          clientSecret: { env: 'CLIENT_SECRET' },
        },
      },
    });
    expect(r.clientAuth).toEqual({
      method: 'client_secret_basic',
      clientId: 'svc',
      clientSecret: env.CLIENT_SECRET,
    });
    expect(r.presentsClientCertificate).toBe(false);
  });

  it('a token exchange defaults to JWT token types and no client authentication', () => {
    const provider = async () => ({ token: 'x' });
    const r = resolve({ tokenExchange: { tokenEndpoint: TOKEN, subjectToken: { provider } } }, false);
    expect(r).toMatchObject({
      kind: 'tokenExchange',
      subjectTokenType: TOKEN_TYPE_JWT,
      clientAuth: { method: 'none' },
    });
    expect(r.subjectToken).toEqual({ provider });
  });

  it("on behalf of: the caller's token as subject (access_token type), the workload as actor", () => {
    const r = resolve({
      tokenExchange: {
        tokenEndpoint: TOKEN,
        subjectToken: { callerToken: true },
        actorToken: { file: '/svid' },
      },
    });
    expect(r).toMatchObject({
      subjectToken: { callerToken: true },
      subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      actorToken: { file: '/svid' },
      actorTokenType: TOKEN_TYPE_JWT,
    });
  });

  it('a token endpoint on the upstream origin sees the client certificate', () => {
    const r = resolve({
      tokenExchange: { tokenEndpoint: `${ORIGIN}/oauth/token`, subjectToken: { file: '/t' } },
    });
    expect(r.presentsClientCertificate).toBe(true);
  });

  it.each([
    ['no kind', {}, /exactly one of/],
    [
      'two kinds',
      { certificateExchange: { tokenEndpoint: TOKEN }, tokenExchange: { tokenEndpoint: TOKEN } },
      /exactly one of/,
    ],
    ['an unknown kind', { apiKey: { env: 'X' } }, /unknown|apiKey/],
    [
      'an http token endpoint',
      { certificateExchange: { tokenEndpoint: 'http://idp.example/token' } },
      /https: URL/,
    ],
    [
      'a query',
      { certificateExchange: { tokenEndpoint: `${TOKEN}?client_secret=s3cr3t` } },
      /must not have a query/,
    ],
    [
      'credentials in the URL',
      { certificateExchange: { tokenEndpoint: 'https://a:b@idp.example/t' } },
      /credentials in the URL/,
    ],
    ['an unknown option', { certificateExchange: { tokenEndpoint: TOKEN, allowHttp: true } }, /allowHttp/],
    [
      'a reserved parameter',
      { certificateExchange: { tokenEndpoint: TOKEN, parameters: { client_secret: 'x' } } },
      /must not set/,
    ],
    [
      'a parameter with a line break',
      { certificateExchange: { tokenEndpoint: TOKEN, parameters: { a: 'x\r\ny' } } },
      /visible ASCII/,
    ],
    ['a bad encoding', { certificateExchange: { tokenEndpoint: TOKEN, encoding: 'xml' } }, /encoding/],
    [
      'a timeout of a day',
      { certificateExchange: { tokenEndpoint: TOKEN, timeoutMs: 86_400_000 } },
      /timeoutMs/,
    ],
    ['a bad scope', { certificateExchange: { tokenEndpoint: TOKEN, scope: 'a  b' } }, /scope/],
    [
      'client credentials without clientAuth',
      { clientCredentials: { tokenEndpoint: TOKEN } },
      /clientAuth" is required/,
    ],
    [
      'a secret without its method',
      {
        clientCredentials: {
          tokenEndpoint: TOKEN,
          clientAuth: { clientId: 's', clientSecret: { env: 'CLIENT_SECRET' } },
        },
      },
      /clientAuth.method/,
    ],
    [
      'a secret beside private_key_jwt',
      {
        clientCredentials: {
          tokenEndpoint: TOKEN,
          clientAuth: {
            method: 'private_key_jwt',
            clientId: 's',
            privateKeyFile: '/k',
            clientSecret: { env: 'X' },
          },
        },
      },
      /clientSecret/,
    ],
    [
      'an unset secret env var',
      {
        clientCredentials: {
          tokenEndpoint: TOKEN,
          clientAuth: { method: 'client_secret_post', clientId: 's', clientSecret: { env: 'NOT_SET' } },
        },
      },
      /NOT_SET is not set/,
    ],
    [
      'a token exchange without subject token',
      { tokenExchange: { tokenEndpoint: TOKEN } },
      /subjectToken" is required/,
    ],
    [
      'a subject token with both sources',
      { tokenExchange: { tokenEndpoint: TOKEN, subjectToken: { file: '/t', provider: () => 1 } } },
      /must be \{ file/,
    ],
    [
      'a provider that is not a function',
      { tokenExchange: { tokenEndpoint: TOKEN, subjectToken: { provider: 'spiffe' } } },
      /must be a function/,
    ],
    [
      'a caller token without actor',
      { tokenExchange: { tokenEndpoint: TOKEN, subjectToken: { callerToken: true } } },
      /actorToken/,
    ],
    [
      'a caller token with jwt-bearer',
      { tokenExchange: { tokenEndpoint: TOKEN, grant: 'jwt-bearer', subjectToken: { callerToken: true } } },
      /needs grant "token-exchange"/,
    ],
    [
      'a caller token with another key',
      {
        tokenExchange: {
          tokenEndpoint: TOKEN,
          subjectToken: { callerToken: true, file: '/t' },
          actorToken: { file: '/a' },
        },
      },
      /file/,
    ],
    [
      'an actor token type without actor token',
      { tokenExchange: { tokenEndpoint: TOKEN, subjectToken: { file: '/t' }, actorTokenType: 'urn:x' } },
      /needs/,
    ],
  ])('refuses %s', (_name, raw, message) => {
    expect(() => resolve(raw)).toThrow(TypeError);
    expect(() => resolve(raw)).toThrow(message);
  });

  it.each([
    ['a certificate exchange', { certificateExchange: { tokenEndpoint: TOKEN } }],
    [
      'tls_client_auth',
      {
        clientCredentials: { tokenEndpoint: TOKEN, clientAuth: { method: 'tls_client_auth', clientId: 's' } },
      },
    ],
  ])('refuses %s without a client certificate', (_name, raw) => {
    expect(() => resolve(raw, false)).toThrow(/clientCertificate/);
  });

  it('never puts the secret value in an error message', () => {
    let message = '';
    try {
      resolveUpstreamCredential(
        F,
        {
          clientCredentials: {
            tokenEndpoint: TOKEN,
            clientAuth: { method: 'client_secret_basic', clientId: 's', clientSecret: { env: 'BAD' } },
          },
        },
        true,
        ORIGIN,
        { BAD: 'secret with\nnewline' },
      );
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/environment variable BAD/);
    expect(message).not.toContain('secret with');
  });
});
