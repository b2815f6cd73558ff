import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import { UpstreamClient } from './upstream.client.js';
import { resolveUpstreamOptions } from './upstream-options.resolver.js';

let dir: string;
let caPem: string;
const file = (name: string): string => join(dir, name);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'upstream-client-'));
  caPem = (await DevCertificateAuthority.create({ commonName: 'Upstream Test CA' })).certPem;
  writeFileSync(file('ca.pem'), caPem);
  writeFileSync(file('empty.pem'), '');
  // The base64 lines indented: the looser check upstream used to have took this block, and
  // OpenSSL trusts it, but core's strict PEM parsing (one parser for every CA file) refuses it.
  writeFileSync(file('ca-indented.pem'), caPem.replace(/^(?!-----)(.+)$/gm, '  $1'));
  // A good CA, then one on a single line (which OpenSSL ignores): refused, not half-loaded.
  writeFileSync(file('ca-then-one-line.pem'), `${caPem}${caPem.trim().split('\n').join(' ')}\n`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(raw: object): Promise<{ code: ShieldErrorCode; message: string }> {
  const options = resolveUpstreamOptions('llm', { baseUrl: 'https://localhost:1/v1', ...raw });
  const err = await UpstreamClient.create(options).then(
    async (client) => {
      await client.close();
      throw new Error('UpstreamClient.create accepted the CA file');
    },
    (e: unknown) => e,
  );
  if (!isShieldError(err)) throw err;
  return { code: err.code, message: err.message };
}

describe('UpstreamClient.create: CA files', () => {
  it.each([
    ['ca', (path: string) => ({ ca: { file: path } })],
    ['ca as PEM text', (path: string) => ({ ca: { pem: readFileSync(path, 'utf8') } })],
    ['ca as PEM bytes', (path: string) => ({ ca: { pem: readFileSync(path) } })],
    [
      'egressProxy.ca',
      (path: string) => ({ egressProxy: { url: 'https://proxy.local:3128', ca: { file: path } } }),
    ],
  ])('%s: a well-formed CA file starts the client', async (_field, raw) => {
    const client = await UpstreamClient.create(
      resolveUpstreamOptions('llm', { baseUrl: 'https://localhost:1/v1', ...raw(file('ca.pem')) }),
    );
    await client.close();
  });

  const ca = (p: string): object => ({ ca: { file: p } });
  const proxyCa = (p: string): object => ({
    egressProxy: { url: 'https://proxy.local:3128', ca: { file: p } },
  });
  it.each<[string, string, (path: string) => object, ShieldErrorCode, RegExp]>([
    ['ca', 'missing.pem', ca, 'ERR_CERT_FILE_UNREADABLE', /CA file .* is unreadable: ENOENT/],
    ['ca', 'empty.pem', ca, 'ERR_CERT_INVALID', /holds no PEM certificate/],
    ['ca', 'ca-indented.pem', ca, 'ERR_CERT_INVALID', /#1 is not a well-formed PEM block/],
    ['ca', 'ca-then-one-line.pem', ca, 'ERR_CERT_INVALID', /#2 is not a well-formed PEM block/],
    ['egressProxy.ca', 'missing.pem', proxyCa, 'ERR_CERT_FILE_UNREADABLE', /is unreadable: ENOENT/],
    ['egressProxy.ca', 'ca-indented.pem', proxyCa, 'ERR_CERT_INVALID', /#1 is not a well-formed PEM block/],
  ])('%s: %s is refused at start-up', async (_field, name, raw, code, problem) => {
    const err = await refusal(raw(file(name)));
    expect(err.code).toBe(code);
    expect(err.message).toContain(file(name));
    expect(err.message).toMatch(problem);
    expect(err.message).not.toContain(caPem.split('\n')[1]);
  });
});

describe('UpstreamClient.create: CA as PEM text ({ pem })', () => {
  it.each<[string, () => string, RegExp]>([
    ['no certificate', () => 'not a certificate', /holds no PEM certificate/],
    [
      'an indented block',
      () => readFileSync(file('ca-indented.pem'), 'utf8'),
      /#1 is not a well-formed PEM block/,
    ],
    ['over 1 MiB', () => 'x'.repeat(1024 * 1024 + 1), /more than the 1048576 allowed/],
  ])('%s is refused at start-up with ERR_CERT_INVALID naming the option', async (_case, pem, problem) => {
    const err = await refusal({ ca: { pem: pem() } });
    expect(err.code).toBe('ERR_CERT_INVALID');
    expect(err.message).toContain('"upstreams.llm.ca.pem"');
    expect(err.message).toMatch(problem);
  });
});

describe('resolveUpstreamOptions: the ca shape is { file } or { pem }, as in every package', () => {
  it.each<[string, unknown, RegExp]>([
    [
      'a bare string (a path here, PEM text elsewhere)',
      'ca.pem',
      /must be \{ file: .* \} or \{ pem: .* \}, got a bare string/,
    ],
    ['both keys', { file: 'a.pem', pem: 'x' }, /exactly one of "file" or "pem", got "file", "pem"/],
    ['no key', {}, /exactly one of "file" or "pem", got none/],
    ['an unknown key', { path: 'a.pem' }, /exactly one of "file" or "pem", got "path"/],
    ['an empty file', { file: '' }, /"upstreams\.llm\.ca\.file" must be a non-empty path/],
    ['an empty pem', { pem: '' }, /"upstreams\.llm\.ca\.pem" must be non-empty PEM text or bytes/],
    ['a number', 42, /"upstreams\.llm\.ca" must be an object/],
  ])('%s is a TypeError naming the field', (_case, ca, message) => {
    expect(() => resolveUpstreamOptions('llm', { baseUrl: 'https://localhost:1/v1', ca })).toThrow(
      expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(message) }),
    );
  });
});
