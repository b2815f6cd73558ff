/**
 * `UpstreamClient.fetch` (the lean fetch on the pool's dispatcher, issue #18 target 4) under the
 * real OpenAI SDK, for the SDK paths openai-sdk.e2e.spec.ts does not take: a file upload
 * (`FormData`, encoded by Node's `Response` and sent as bytes), a `DELETE`, a sized JSON answer cut
 * mid-body (a typed error now, not undici's `terminated`), and a gzip answer the SDK reads decoded.
 * The upstream is a real HTTPS server on loopback with the test PKI.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createUpstreamRegistry,
  type UpstreamClient,
  type UpstreamRegistry,
} from '@inference-shield/upstream';
import { httpsServer, testPki } from './upstream-fixtures.js';

let pki: Awaited<ReturnType<typeof testPki>>;
let registry: UpstreamRegistry;
let llm: UpstreamClient;
let openai: OpenAI;
let close: () => Promise<void>;
let keyDir: string;
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }[] = [];

beforeAll(async () => {
  pki = await testPki();
  keyDir = mkdtempSync(join(tmpdir(), 'lean-fetch-key-'));
  writeFileSync(join(keyDir, 'key'), 'sk-configured-key\n');
  const server = await httpsServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      const json = (status: number, body: object): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'POST' && req.url === '/v1/files') {
        json(200, {
          id: 'file-1',
          object: 'file',
          bytes: 8,
          created_at: 1,
          filename: 'data.jsonl',
          purpose: 'fine-tune',
          status: 'uploaded',
        });
      } else if (req.method === 'DELETE' && req.url === '/v1/files/file-1') {
        json(200, { id: 'file-1', object: 'file', deleted: true });
      } else if (req.url === '/v1/models/cut') {
        // Announces 4 KiB, sends a few bytes, then the connection is gone.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
        res.write('{"id":"cut","object":"mo');
        setImmediate(() => res.socket?.destroy());
      } else if (req.url === '/v1/models/zipped') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(JSON.stringify({ id: 'zipped', object: 'model', created: 1, owned_by: 'test' })));
      } else {
        json(404, { error: { message: 'no such route', type: 'invalid_request_error' } });
      }
    });
  });
  close = server.close;
  registry = await createUpstreamRegistry({
    upstreams: {
      llm: {
        baseUrl: `https://localhost:${server.port}/v1`,
        ca: { file: pki.ca.cert },
        apiKey: { file: join(keyDir, 'key') },
        timeouts: { connectMs: 3000, headersMs: 3000, bodyIdleMs: 3000 },
      },
    },
  });
  llm = registry.client('llm');
  openai = new OpenAI({ baseURL: llm.baseUrl, apiKey: 'sdk-key-replaced', fetch: llm.fetch, maxRetries: 0 });
});

afterAll(async () => {
  await registry?.close();
  await close?.();
  pki?.cleanup();
  rmSync(keyDir, { recursive: true, force: true });
});

describe('the OpenAI SDK through UpstreamClient.fetch', () => {
  it('uploads a file: multipart/form-data arrives whole, with the configured key', async () => {
    seen.length = 0;
    const file = await toFile(Buffer.from('{"x":1}\n'), 'data.jsonl', { type: 'application/jsonl' });
    const created = await openai.files.create({ file, purpose: 'fine-tune' });
    expect(created.id).toBe('file-1');
    const upload = seen.find((s) => s.method === 'POST');
    expect(upload?.headers.authorization).toBe('Bearer sk-configured-key');
    const type = upload?.headers['content-type'] ?? '';
    expect(type).toMatch(/^multipart\/form-data; boundary=/);
    const form = await new Response(upload?.body, { headers: { 'content-type': type } }).formData();
    expect(form.get('purpose')).toBe('fine-tune');
    const sent = form.get('file') as File;
    expect(sent.name).toBe('data.jsonl');
    expect(await sent.text()).toBe('{"x":1}\n');
  });

  it('deletes a file (DELETE, no body)', async () => {
    expect(await openai.files.delete('file-1')).toMatchObject({ id: 'file-1', deleted: true });
  });

  it('reads a gzip answer decoded, as with fetch', async () => {
    expect(await openai.models.retrieve('zipped')).toMatchObject({ id: 'zipped', owned_by: 'test' });
  });

  it('a sized answer cut mid-body is a typed error, not a truncated success', async () => {
    const before = llm.stats().errors.ERR_UPSTREAM_BAD_RESPONSE ?? 0;
    const err = await openai.models.retrieve('cut').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    // The SDK wraps the body's error; the typed code is on the chain.
    let code: unknown;
    for (let e: unknown = err, i = 0; e !== undefined && e !== null && i < 5; i++) {
      code ??= (e as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('ERR_')) break;
      code = undefined;
      e = (e as { cause?: unknown }).cause;
    }
    expect(code).toBe('ERR_UPSTREAM_BAD_RESPONSE');
    expect(llm.stats().errors.ERR_UPSTREAM_BAD_RESPONSE ?? 0).toBe(before + 1);
  });
});
