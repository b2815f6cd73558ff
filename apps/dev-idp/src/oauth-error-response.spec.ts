import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { connect as netConnect, Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initDevPki } from '@inference-shield/dev-pki';
import { loadDevIdpClientsFile } from './clients-config.js';
import { resolveDevIdpOptions } from './dev-idp.options.js';
import { startDevIdp, type DevIdp } from './dev-idp.server.js';
import { answerClientError, clientErrorResponse, ResponsesInFlight } from './oauth-error-response.js';

// Put in every malformed request; no answer may carry it back.
const MARKER = 'ECHO-7f3a9c';
const FORM = 'application/x-www-form-urlencoded';
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
// oidc-provider's body cap is 56 KiB (lib/shared/selective_body.js); both sizes are above it.
const OVER_CAP = 100 * 1024;
const FAR_OVER_CAP = 2 * 1024 * 1024;

const root = mkdtempSync(join(tmpdir(), 'dev-idp-errors-'));
let idp: DevIdp;
let agent: Agent;
let basic: string;

beforeAll(async () => {
  const pki = await initDevPki({ dir: join(root, 'pki'), clients: [] });
  idp = await startDevIdp({ port: 0, pkiDir: join(root, 'pki'), keysFile: join(root, 'jwks.json') });
  agent = new Agent({ connect: { ca: readFileSync(pki.caCert) } });
  const demo = loadDevIdpClientsFile(resolveDevIdpOptions({}).clientsFile).clients.find(
    (c) => c.clientId === 'demo-service',
  );
  if (demo?.clientSecret === undefined) throw new Error('clients.json has no demo-service secret');
  basic = `Basic ${Buffer.from(`${demo.clientId}:${demo.clientSecret}`).toString('base64')}`;
});

afterAll(async () => {
  await idp.close();
  await agent.close();
  rmSync(root, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** POST to the token endpoint with undici over TLS (trusting only the dev CA). */
async function post(headers: Record<string, string>, body: string | Buffer | Readable): Promise<Answer> {
  const res = await request(idp.tokenEndpoint, {
    method: 'POST',
    headers: { authorization: basic, accept: 'application/json', ...headers },
    body,
    dispatcher: agent,
  });
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { status: res.statusCode, headers: flat, body: await res.body.text() };
}

/** A body undici sends chunked (no Content-Length), in 8 KiB pieces. */
function streamed(size: number): Readable {
  const piece = Buffer.from(`${MARKER}&`.padEnd(8192, 'a'));
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < size; sent += piece.length) yield piece;
    })(),
  );
}

/**
 * Write raw bytes on a fresh TLS connection, half-close it when told, and read the answer until the
 * server closes. For requests no HTTP client would frame this way.
 */
function exchange(head: string, body = '', { halfClose = false } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: idp.port, servername: 'localhost', ca: idp.caPem });
    const chunks: Buffer[] = [];
    socket.once('secureConnect', () => {
      socket.write(head + body);
      if (halfClose) socket.end();
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in 10 s')));
    socket.once('close', () => {
      // Skip interim 1xx answers: the final one is the last head in the stream.
      const text = Buffer.concat(chunks).toString('utf8');
      const final = text.slice(text.lastIndexOf('HTTP/1.1 '));
      const split = final.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = final.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const at = line.indexOf(':');
        headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: final.slice(split + 4) });
    });
  });
}

/** A request head for the token endpoint with the demo client's credentials. */
const head = (fields: string): string =>
  `POST /token HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${basic}\r\n${fields}\r\n`;

/** RFC 6749 5.2: a JSON object with `error` (and only the members 5.2 names), not cacheable. */
function expectOAuthError(answer: Answer, status: number, error: string): void {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/json(;|$)/);
  expect(answer.headers['cache-control']).toBe('no-store');
  const json = JSON.parse(answer.body) as Record<string, unknown>;
  expect(json.error).toBe(error);
  expect(json.error_description).toEqual(expect.any(String));
  expect(Object.keys(json).every((k) => ['error', 'error_description'].includes(k))).toBe(true);
  expect(answer.body).not.toContain(MARKER);
}

describe('dev IdP token endpoint: a malformed body gets an RFC 6749 5.2 JSON error', () => {
  it('still issues a token for a well-formed client_credentials request (both harnesses)', async () => {
    const form = 'grant_type=client_credentials&scope=models%3Ainfer';
    for (const answer of [
      await post({ 'content-type': FORM }, form),
      await exchange(
        head(`Content-Type: ${FORM}\r\nContent-Length: ${form.length}\r\nConnection: close\r\n`),
        form,
      ),
    ]) {
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(answer.body)).toMatchObject({
        access_token: expect.any(String),
        token_type: 'Bearer',
      });
    }
  });

  it.each<[string, Record<string, string>, string | Buffer, string]>([
    [
      'invalid JSON sent as application/json',
      { 'content-type': 'application/json' },
      `{"grant_type": ${MARKER}`,
      'invalid_request',
    ],
    [
      'valid JSON (not a token request format)',
      { 'content-type': 'application/json' },
      JSON.stringify({ grant_type: 'client_credentials', scope: MARKER }),
      'invalid_request',
    ],
    [
      'invalid JSON from a client that prefers HTML',
      { 'content-type': 'application/json', accept: BROWSER_ACCEPT },
      `{${MARKER}`,
      'invalid_request',
    ],
    [
      'text/plain',
      { 'content-type': 'text/plain' },
      `grant_type=client_credentials ${MARKER}`,
      'invalid_request',
    ],
    ['application/xml', { 'content-type': 'application/xml' }, `<grant>${MARKER}</grant>`, 'invalid_request'],
    [
      'multipart/form-data',
      { 'content-type': 'multipart/form-data; boundary=b' },
      `--b\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n${MARKER}\r\n--b--\r\n`,
      'invalid_request',
    ],
    [
      'a content type that does not parse',
      { 'content-type': `;;${MARKER}/=` },
      'grant_type=client_credentials',
      'invalid_request',
    ],
    [
      'a body without a content type (not read)',
      {},
      `grant_type=client_credentials&scope=${MARKER}`,
      'invalid_request',
    ],
    [
      'a declared body over the cap',
      { 'content-type': FORM },
      `grant_type=client_credentials&scope=models%3Ainfer&pad=${MARKER}`.padEnd(OVER_CAP, 'a'),
      'invalid_request',
    ],
    [
      'a declared body far over the cap',
      { 'content-type': FORM },
      `grant_type=client_credentials&pad=${MARKER}`.padEnd(FAR_OVER_CAP, 'a'),
      'invalid_request',
    ],
    [
      'a body over the cap from a client that prefers HTML',
      { 'content-type': FORM, accept: BROWSER_ACCEPT },
      `grant_type=client_credentials&pad=${MARKER}`.padEnd(OVER_CAP, 'a'),
      'invalid_request',
    ],
    // The urlencoded parser is lenient as HTML forms are (a bad escape stays literal, bad UTF-8
    // becomes U+FFFD): what is broken is then named by the parameter it broke.
    [
      'broken percent escapes in the scope',
      { 'content-type': FORM },
      `grant_type=client_credentials&scope=%zz%E0%A4${MARKER}`,
      'invalid_scope',
    ],
    [
      'invalid UTF-8 in the scope',
      { 'content-type': FORM },
      Buffer.concat([
        Buffer.from(`grant_type=client_credentials&scope=${MARKER}`),
        Buffer.from([0xff, 0xfe, 0xc3]),
      ]),
      'invalid_scope',
    ],
    [
      'a broken grant_type',
      { 'content-type': FORM },
      `grant_type=client%ZZ${MARKER}&scope=models%3Ainfer`,
      'unsupported_grant_type',
    ],
    ['only separators and stray escapes', { 'content-type': FORM }, `&&==&%%%&${MARKER}`, 'invalid_request'],
    [
      'bracketed keys',
      { 'content-type': FORM },
      `grant_type[]=client_credentials&scope[x]=${MARKER}`,
      'invalid_request',
    ],
    [
      'grant_type twice',
      { 'content-type': FORM },
      `grant_type=client_credentials&grant_type=${MARKER}`,
      'invalid_request',
    ],
  ])('%s: 400', async (_name, headers, body, error) => {
    expectOAuthError(await post(headers, body), 400, error);
  });

  it('a streamed (chunked) body over the cap: 400', async () => {
    expectOAuthError(await post({ 'content-type': FORM }, streamed(OVER_CAP)), 400, 'invalid_request');
  });

  it('a declared body over the cap with Expect: 100-continue: 400', async () => {
    const answer = await exchange(
      head(
        `Content-Type: ${FORM}\r\nContent-Length: ${FAR_OVER_CAP}\r\nExpect: 100-continue\r\nConnection: close\r\n`,
      ),
    );
    expectOAuthError(answer, 400, 'invalid_request');
  });

  // Requests Node's HTTP parser refuses before oidc-provider sees them (Node used to answer a
  // bare "400 Bad Request" without a body).
  it.each<[string, number, { fields: string; body: string; halfClose?: boolean }]>([
    [
      'a chunk size that is not hex',
      400,
      {
        fields: `Content-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n`,
        body: `zz\r\n${MARKER}\r\n0\r\n\r\n`,
      },
    ],
    [
      'a chunk longer than its size',
      400,
      {
        fields: `Content-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n`,
        body: `4\r\ngrant_type=${MARKER}\r\n0\r\n\r\n`,
      },
    ],
    [
      'a body cut short (connection half-closed)',
      400,
      {
        fields: `Content-Type: ${FORM}\r\nContent-Length: 500\r\n`,
        body: `grant_type=${MARKER}`,
        halfClose: true,
      },
    ],
    [
      'a Content-Length that is not a number',
      400,
      { fields: `Content-Type: ${FORM}\r\nContent-Length: 12${MARKER}\r\n`, body: 'grant_type=x' },
    ],
    [
      'Content-Length and Transfer-Encoding together',
      400,
      {
        fields: `Content-Type: ${FORM}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n`,
        body: `0\r\n\r\n${MARKER}`,
      },
    ],
    [
      'a Content-Length beyond any integer',
      400,
      { fields: `Content-Type: ${FORM}\r\nContent-Length: 99999999999999999999999\r\n`, body: MARKER },
    ],
    [
      'headers over 16 KiB',
      431,
      {
        fields: `Content-Type: ${FORM}\r\nX-Pad: ${MARKER}${'h'.repeat(20 * 1024)}\r\n`,
        body: 'grant_type=x',
      },
    ],
  ])('%s: %i', async (_name, status, { fields, body, halfClose = false }) => {
    const answer = await exchange(head(fields), body, { halfClose });
    expectOAuthError(answer, status, 'invalid_request');
    expect(answer.headers.connection).toBe('close');
  });
});

describe('clientErrorResponse', () => {
  it.each([
    ['HPE_INVALID_CHUNK_SIZE', 400],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 400],
    ['HPE_INVALID_EOF_STATE', 400],
    [undefined, 400],
    ['HPE_HEADER_OVERFLOW', 431],
    ['HPE_CHUNK_EXTENSIONS_OVERFLOW', 413],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408],
  ])('%s: %i with an invalid_request JSON body of the declared length', (code, status) => {
    const raw = clientErrorResponse(code);
    const [headPart = '', body = ''] = raw.split('\r\n\r\n');
    expect(headPart.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
    expect(headPart).toContain('\r\nContent-Type: application/json; charset=utf-8');
    expect(headPart).toContain('\r\nCache-Control: no-store');
    expect(headPart).toContain(`\r\nContent-Length: ${Buffer.byteLength(body)}`);
    expect(JSON.parse(body)).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
  });
});

describe('answerClientError', () => {
  /** A writable socket stand-in that records what is written. */
  const sink = (): { socket: Duplex; written: string[] } => {
    const written: string[] = [];
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        written.push(chunk.toString());
        done();
      },
    });
    return { socket, written };
  };
  const response = (state: 'fresh' | 'headers sent' | 'ended'): ServerResponse => {
    const res = new ServerResponse(new IncomingMessage(new Socket()));
    if (state !== 'fresh') res.flushHeaders();
    if (state === 'ended') res.end();
    return res;
  };
  const parseError = Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_CHUNK_SIZE' });
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

  type State = 'fresh' | 'headers sent' | 'ended' | undefined;
  it.each<[string, boolean, NodeJS.ErrnoException, State]>([
    ['no response on the socket yet', true, parseError, undefined],
    ['a response not yet started', true, parseError, 'fresh'],
    ['the previous response finished', true, parseError, 'ended'],
    ['a response half written (an answer would corrupt it)', false, parseError, 'headers sent'],
    ['a connection the client reset', false, reset, undefined],
  ])('%s: answers %s, then closes', (_name, answers, err, state) => {
    vi.useFakeTimers();
    try {
      const { socket, written } = sink();
      answerClientError(err, socket, state === undefined ? undefined : response(state));
      expect(written.length > 0).toBe(answers);
      // An answer is ended at once and the socket destroyed after a short linger (so a reset
      // cannot overtake the answer); no answer means destroyed at once.
      expect(socket.writableEnded || socket.destroyed).toBe(true);
      expect(socket.destroyed).toBe(!answers);
      vi.advanceTimersByTime(1000);
      expect(socket.destroyed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('ResponsesInFlight with answerClientError, on a real connection', () => {
  /**
   * The dev IdP's wiring on a plain HTTP server: request 1 streams its answer slowly; meanwhile
   * request 2 (pipelined) arrives, then a request with broken chunked framing. The error answer
   * must not land inside request 1's body.
   */
  async function pipelined(): Promise<string> {
    const responses = new ResponsesInFlight();
    const server = createServer((req, res) => {
      responses.track(req.socket, res);
      if (req.url === '/slow') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('FIRST-HALF|');
        setTimeout(() => res.end('SECOND-HALF'), 300);
      } else {
        setTimeout(() => res.end('second response'), 600);
      }
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      answerClientError(err, socket, responses.current(socket)),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      return await new Promise<string>((resolve) => {
        const socket = netConnect((server.address() as AddressInfo).port, '127.0.0.1', () => {
          socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
          setTimeout(
            () =>
              socket.write(
                'GET /b HTTP/1.1\r\nHost: a\r\n\r\n' +
                  'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
              ),
            50,
          );
        });
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(received));
      });
    } finally {
      server.close();
    }
  }

  it('writes no error answer into a response being streamed', async () => {
    const received = await pipelined();
    expect(received).toContain('FIRST-HALF|');
    expect(received).not.toContain('invalid_request');
    // Nothing but the one status line of the response in progress.
    expect(received.match(/HTTP\/1\.1 /g)).toHaveLength(1);
  });
});
