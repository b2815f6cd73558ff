import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { leanFetch, leanFetchRequest } from './lean-fetch.js';

describe('leanFetchRequest', () => {
  it.each([
    ['get', 'GET'],
    ['post', 'POST'],
    ['Patch', 'PATCH'],
    ['delete', 'DELETE'],
    ['PROPFIND', 'PROPFIND'],
  ])('normalizes the method %s to %s, as fetch does', async (given, sent) => {
    expect((await leanFetchRequest('https://x/v1/a', { method: given })).method).toBe(sent);
  });

  it.each(['CONNECT', 'trace', 'TRACK'])(
    'refuses the forbidden method %s with a TypeError',
    async (method) => {
      await expect(leanFetchRequest('https://x/v1/a', { method })).rejects.toThrow(TypeError);
    },
  );

  it.each(['GET', 'HEAD'])('refuses a body on %s, as fetch does', async (method) => {
    await expect(leanFetchRequest('https://x/v1/a', { method, body: 'x' })).rejects.toThrow(TypeError);
  });

  it.each([
    [
      'a Headers object',
      new Headers([
        ['X-A', '1'],
        ['x-b', ' 2 '],
      ]),
    ],
    ['a record', { 'X-A': '1', 'x-b': ' 2 ' }],
    [
      'a list of pairs',
      [
        ['X-A', '1'],
        ['x-b', ' 2 '],
      ],
    ],
  ])('reads headers from %s, lower-cased and trimmed', async (_name, headers) => {
    const req = await leanFetchRequest('https://x/v1/a', { headers: headers as RequestInit['headers'] });
    expect(req.headers).toEqual({ 'x-a': '1', 'x-b': '2' });
  });

  it('never takes a Host from the caller (undici sets the upstream one)', async () => {
    const req = await leanFetchRequest('https://x/v1/a', { headers: { Host: 'internal.admin', 'x-a': '1' } });
    expect(req.headers).toEqual({ 'x-a': '1' });
  });

  it('joins a name given twice, as Headers does', async () => {
    const req = await leanFetchRequest('https://x/v1/a', {
      headers: [
        ['accept', 'a/b'],
        ['Accept', 'c/d'],
      ],
    });
    expect(req.headers).toEqual({ accept: 'a/b, c/d' });
  });

  it('takes the fields of a Request, init winning field by field', async () => {
    const signal = new AbortController().signal;
    const input = new Request('https://x/v1/a?q=1', {
      method: 'PUT',
      headers: { 'x-from': 'request' },
      body: 'from request',
    });
    const req = await leanFetchRequest(input, { headers: { 'x-from': 'init' }, signal });
    expect(req.url).toBe('https://x/v1/a?q=1');
    expect(req.method).toBe('PUT');
    expect(req.headers).toEqual({ 'x-from': 'init' });
    expect(req.signal).toBe(signal);
    // A Request's body is a stream: sent as one, never buffered here.
    expect(Symbol.asyncIterator in (req.body as object)).toBe(true);
  });

  const bytes = new TextEncoder().encode('héllo');
  it.each([
    ['a string', 'hello', 'hello', 'text/plain;charset=UTF-8'],
    ['a Uint8Array', bytes, 'héllo', undefined],
    ['an ArrayBuffer', bytes.buffer, 'héllo', undefined],
    ['a DataView', new DataView(bytes.buffer), 'héllo', undefined],
    [
      'URLSearchParams',
      new URLSearchParams({ a: '1', b: 'x y' }),
      'a=1&b=x+y',
      'application/x-www-form-urlencoded;charset=UTF-8',
    ],
    ['a Blob', new Blob(['{"a":1}'], { type: 'application/json' }), '{"a":1}', 'application/json'],
  ])('sends %s with the content type fetch gives it', async (_name, body, text, type) => {
    const req = await leanFetchRequest('https://x/v1/a', {
      method: 'POST',
      body: body as RequestInit['body'],
    });
    const sent = req.body as string | Uint8Array;
    expect(typeof sent === 'string' ? sent : Buffer.from(sent).toString('utf8')).toBe(text);
    expect(req.headers['content-type']).toBe(type);
  });

  it('keeps a content type the caller set', async () => {
    const req = await leanFetchRequest('https://x/v1/a', {
      method: 'POST',
      body: '{"a":1}',
      headers: { 'Content-Type': 'application/json' },
    });
    expect(req.headers['content-type']).toBe('application/json');
  });

  it('encodes FormData as multipart/form-data with its boundary (the SDK uploads files so)', async () => {
    const form = new FormData();
    form.append('purpose', 'fine-tune');
    form.append('file', new Blob(['{"x":1}\n'], { type: 'application/jsonl' }), 'data.jsonl');
    const req = await leanFetchRequest('https://x/v1/files', { method: 'POST', body: form });
    const type = req.headers['content-type'] ?? '';
    expect(type).toMatch(/^multipart\/form-data; boundary=/);
    const parsed = await new Response(req.body as Uint8Array, {
      headers: { 'content-type': type },
    }).formData();
    expect(parsed.get('purpose')).toBe('fine-tune');
    expect(await (parsed.get('file') as File).text()).toBe('{"x":1}\n');
  });
});

describe('leanFetch against a real HTTP server', () => {
  let server: Server;
  let origin: string;
  let agent: Agent;
  const sockets = new Set<Socket>();
  /** What the server saw of each request, and when a response's client went away. */
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
  let closedEarly: Promise<void> = Promise.resolve();
  let onClosedEarly: () => void = () => undefined;
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        const route = routes.get((req.url ?? '').split('?')[0] ?? '');
        if (route !== undefined) route(req, res);
        else res.end('{"ok":true}');
      });
    });
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    agent = new Agent({ keepAliveTimeout: 1000 });

    routes.set('/json', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-multi': 'a' });
      res.end(JSON.stringify({ id: 'm', n: 1 }));
    });
    routes.set('/bom', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"bom":true}')]));
    });
    routes.set('/empty', (_req, res) => {
      res.writeHead(204);
      res.end();
    });
    routes.set('/redirect', (_req, res) => {
      res.writeHead(302, { location: '/json' });
      res.end('moved');
    });
    routes.set('/gzip', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
      res.end(gzipSync('decoded as fetch would'));
    });
    routes.set('/early-hints', (_req, res) => {
      res.writeEarlyHints({ link: '</a.css>; rel=preload' });
      res.end('after hints');
    });
    routes.set('/stream', (_req, res) => {
      // Events until the client goes away; never ends by itself.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const timer = setInterval(() => res.write(`data: ${i++}\n\n`), 5);
      res.on('close', () => {
        clearInterval(timer);
        onClosedEarly();
      });
    });
    routes.set('/big', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(1024 * 1024, 7));
    });
    routes.set('/cut', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
      res.write('only part of it');
      setImmediate(() => res.socket?.destroy());
    });
  });

  afterEach(() => {
    seen.length = 0;
  });

  afterAll(async () => {
    await agent.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const mapped = (err: unknown): Error => new Error('mapped', { cause: err });

  async function lean(path: string, init?: RequestInit): Promise<Response> {
    const req = await leanFetchRequest(`${origin}${path}`, init);
    return leanFetch(agent, { origin, path, url: `${origin}${path}` }, req, mapped);
  }

  function closed(): Promise<void> {
    closedEarly = new Promise<void>((resolve) => (onClosedEarly = resolve));
    return closedEarly;
  }

  it('returns a standard Response: status, headers, url, json()', async () => {
    const res = await lean('/json');
    expect(res).toBeInstanceOf(Response);
    expect(res.status).toBe(200);
    expect(res.ok).toBe(true);
    expect(res.url).toBe(`${origin}/json`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-multi')).toBe('a');
    expect(res.bodyUsed).toBe(false);
    expect(await res.json()).toEqual({ id: 'm', n: 1 });
    expect(res.bodyUsed).toBe(true);
    await expect(res.text()).rejects.toThrow(TypeError);
  });

  it('sends the method, headers and body given, and nothing it was not given but the framing', async () => {
    const res = await lean('/echo', {
      method: 'POST',
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      body: '{"q":1}',
    });
    await res.text();
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/echo', body: '{"q":1}' });
    expect(seen[0]?.headers.authorization).toBe('Bearer t');
    // No accept-encoding of fetch's: an answer is never compressed on our behalf.
    expect(seen[0]?.headers['accept-encoding']).toBeUndefined();
  });

  it('streams a request body given as a ReadableStream (duplex: half)', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('part 1, '));
        c.enqueue(new TextEncoder().encode('part 2'));
        c.close();
      },
    });
    const res = await lean('/echo', { method: 'POST', body, duplex: 'half' } as RequestInit);
    await res.text();
    expect(seen[0]?.body).toBe('part 1, part 2');
  });

  it('reads the body as a web stream, chunk by chunk, when asked for body', async () => {
    const res = await lean('/big');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      expect(value).toBeInstanceOf(Uint8Array);
      total += value.byteLength;
    }
    expect(total).toBe(1024 * 1024);
    expect(res.bodyUsed).toBe(true);
  });

  it('reads a large body whole (the socket paused and resumed on the way)', async () => {
    const res = await lean('/big');
    expect((await res.arrayBuffer()).byteLength).toBe(1024 * 1024);
  });

  it.each([
    ['a 204', '/empty', 'GET'],
    ['a HEAD', '/json', 'HEAD'],
  ])('gives %s a null body', async (_name, path, method) => {
    const res = await lean(path, { method });
    expect(res.body).toBeNull();
    expect(await res.text()).toBe('');
  });

  it('never follows a redirect: the 3xx is returned, one request made', async () => {
    const res = await lean('/redirect');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/json');
    await res.text();
    expect(seen.map((s) => s.url)).toEqual(['/redirect']);
  });

  it('drops a UTF-8 byte order mark in text() and json(), as fetch does', async () => {
    expect(await (await lean('/bom')).json()).toEqual({ bom: true });
    expect(await (await lean('/bom')).text()).toBe('{"bom":true}');
  });

  it('decodes a gzip body, as fetch does', async () => {
    expect(await (await lean('/gzip')).text()).toBe('decoded as fetch would');
  });

  it('skips 1xx answers (103 Early Hints) and returns the final one', async () => {
    const res = await lean('/early-hints');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('after hints');
  });

  it('a body cut short errors with the mapped error, not a truncated success', async () => {
    const res = await lean('/cut');
    const err = await res.text().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe('mapped');
  });

  it('cancelling the body stream cancels the upstream request', async () => {
    const gone = closed();
    const res = await lean('/stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await reader.cancel();
    await gone;
  });

  it('an abort while the body streams cancels the upstream request and fails the body', async () => {
    const gone = closed();
    const ac = new AbortController();
    const res = await lean('/stream', { signal: ac.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    ac.abort();
    await expect(reader.read()).rejects.toThrow('mapped');
    await gone;
  });

  it('an abort before the headers rejects with the signal reason, nothing sent when already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('caller left'));
    await expect(lean('/json', { signal: ac.signal })).rejects.toThrow('caller left');
    expect(seen).toHaveLength(0);
  });

  it('clone() gives a second reader of the same bytes', async () => {
    const res = await lean('/json');
    const copy = res.clone();
    expect(await copy.json()).toEqual({ id: 'm', n: 1 });
    expect(await res.json()).toEqual({ id: 'm', n: 1 });
  });
});
