import { describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { resolveUpstreamPath, resolveUpstreamTarget, upstreamRequestTarget } from './upstream-target.js';

const scope = {
  origin: 'https://llm.example:8443',
  baseUrl: 'https://llm.example:8443/v1/',
  pathPrefix: '/v1/',
};
const root = { origin: 'https://llm.example', baseUrl: 'https://llm.example/', pathPrefix: '/' };

function refused(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    return isShieldError(err) && err.code === 'ERR_UPSTREAM_ORIGIN_MISMATCH';
  }
}

describe('resolveUpstreamTarget', () => {
  it.each([
    ['https://llm.example:8443/v1/chat/completions', 'https://llm.example:8443/v1/chat/completions'],
    ['https://llm.example:8443/v1', 'https://llm.example:8443/v1'],
    ['https://LLM.example:8443/v1/models?x=1#frag', 'https://llm.example:8443/v1/models?x=1'],
    ['chat/completions', 'https://llm.example:8443/v1/chat/completions'],
    ['/v1/embeddings', 'https://llm.example:8443/v1/embeddings'],
    ['https://llm.example:8443/v1/a/../b', 'https://llm.example:8443/v1/b'],
  ])('accepts %s', (input, expected) => {
    expect(resolveUpstreamTarget(scope, input).href).toBe(expected);
  });

  it.each([
    'https://llm.example/v1/models',
    'https://llm.example:9999/v1/models',
    'http://llm.example:8443/v1/models',
    'https://evil.example:8443/v1/models',
    'https://llm.example.evil.example:8443/v1/models',
    'https://llm.example:8443/v2/models',
    'https://llm.example:8443/v1x',
    'https://llm.example:8443/v1/../admin',
    'https://llm.example:8443/v1/%2e%2e/admin',
    'https://llm.example:8443/v1/.%2E/admin',
    'https://llm.example:8443/v1/..%2fadmin',
    'https://llm.example:8443/v1/x%5C..%5Cadmin',
    'https://llm.example:8443/v1\\..\\admin',
    'https://llm.example:8443/v1/a%00b',
    'https://u:p@llm.example:8443/v1/models',
    '//evil.example/v1/models',
    '/admin',
    '../admin',
    'file:///etc/passwd',
    'data:text/plain,hi',
    'javascript:alert(1)',
    `https://llm.example:8443/v1/${'a'.repeat(9000)}`,
  ])('refuses %s', (input) => {
    expect(refused(() => resolveUpstreamTarget(scope, input))).toBe(true);
  });

  it('a root base accepts any path of its origin only', () => {
    expect(resolveUpstreamTarget(root, '/anything').href).toBe('https://llm.example/anything');
    expect(refused(() => resolveUpstreamTarget(root, 'https://llm.example:444/x'))).toBe(true);
  });
});

describe('resolveUpstreamPath', () => {
  it.each([
    ['chat/completions', '/v1/chat/completions'],
    ['/chat/completions', '/v1/chat/completions'],
    ['//evil.example/x', '/v1/evil.example/x'],
    ['models?limit=2', '/v1/models'],
  ])('%s stays under the base (%s)', (path, expected) => {
    expect(resolveUpstreamPath(scope, path).pathname).toBe(expected);
  });

  it.each(['../admin', 'a/../../admin', '%2e%2e/admin', '..%2f..%2fadmin', '..\\admin'])(
    'refuses %s',
    (path) => {
      expect(refused(() => resolveUpstreamPath(scope, path))).toBe(true);
    },
  );
});

describe('upstreamRequestTarget (the request() hot path)', () => {
  const paths = [
    'chat/completions',
    '/embeddings',
    'models?limit=2&after=abc',
    'files/file-abc.jsonl',
    '',
    '//evil.example/x',
    'a//b',
    'x/../../admin',
    '../admin',
    './models',
    'models/.',
    '%2e%2e/admin',
    '..%2f..%2fadmin',
    '..\\admin',
    'models?q=a b',
    'caf\u00e9',
    'a?x=..%2f',
  ];

  it.each(paths)('%j gives what the full URL check gives', (path) => {
    let expected: string;
    try {
      const url = resolveUpstreamPath(scope, path);
      expected = `${url.pathname}${url.search}`;
    } catch (err) {
      expected = (err as { code: string }).code;
    }
    let actual: string;
    try {
      actual = upstreamRequestTarget(scope, path);
    } catch (err) {
      actual = (err as { code: string }).code;
    }
    expect(actual).toBe(expected);
  });
});
