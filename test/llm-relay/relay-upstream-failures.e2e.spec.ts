/**
 * Upstream failures through the relay, seen by the `openai` SDK: a 5xx that quotes the prompt, an
 * LLM that refuses our client certificate, an upstream that is gone, a stream broken mid-way. The
 * caller gets a typed error in OpenAI's shape; the operator gets one log line with the code, the
 * upstream, the cause's class and library code (the TLS alert), never a body, a prompt or an output.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IssuedCertificate, TestPki } from '@inference-shield/dev-pki';
import { CaptureLogger, testPki, type TestApp } from '../support/harness.js';
import {
  CaptureSink,
  relayAppModule,
  sdk,
  startRelayApp,
  startStandin,
  workload,
  type StandinSetup,
} from './support/relay-fixture.js';

const PROMPT = 'PROMPT-SENTINEL-a41c';
const UPSTREAM_BODY = 'UPSTREAM-BODY-SENTINEL-77e0';

let pki: TestPki;
let failing: Server;
let failingPort: number;
let strict: StandinSetup;
let app: TestApp;
let caller: IssuedCertificate;
const logger = new CaptureLogger();
const audit = new CaptureSink();
const clients: (OpenAI & { close(): Promise<void> })[] = [];

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  pki = await testPki('relay-failures');
  // A real TLS upstream that fails: 500 quoting what it was sent, or a stream cut after two chunks.
  failing = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (body.includes('"err-stream"') && req.url?.endsWith('/responses') === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          `event: error\ndata: ${JSON.stringify({ type: 'error', code: 'shard_down', message: `${UPSTREAM_BODY} shard 7`, param: null, sequence_number: 1 })}\n\n`,
        );
        res.end();
        return;
      }
      if (body.includes('"err-stream"')) {
        // An error event inside a 200 stream, its message naming the upstream's internals.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          `data: ${JSON.stringify({ error: { message: `${UPSTREAM_BODY} shard 7 of cluster b`, type: 'server_error', code: 'shard_down', param: null } })}\n\n`,
        );
        res.end();
        return;
      }
      if (body.includes('"stream":true')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (text: string) =>
          `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'up', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
        res.write(chunk('first'));
        res.write(chunk(` ${UPSTREAM_BODY}`));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `${UPSTREAM_BODY} ${body}`, type: 'server_error' } }));
    });
  });
  failingPort = await listen(failing);
  // The hosted LLM requires a client certificate; this upstream is configured without one.
  strict = await startStandin({}, pki);
  const gonePort = await listen(createServer());
  const module = relayAppModule({
    upstream: {
      upstreams: {
        failing: { baseUrl: `https://localhost:${failingPort}/v1`, ca: { file: pki.ca.cert } },
        strict: {
          baseUrl: `${strict.standin.url}/v1`,
          ca: { file: pki.ca.cert },
          apiKey: { file: strict.keyFile },
        },
        gone: { baseUrl: `https://localhost:${gonePort}/v1`, ca: { file: pki.ca.cert } },
      },
    },
    relay: {
      upstreams: { failing: {}, strict: {}, gone: {} },
      models: {
        failing: { upstream: 'failing', model: 'up' },
        errstream: { upstream: 'failing', model: 'err-stream' },
        strict: { upstream: 'strict', model: 'standin-chat' },
        gone: { upstream: 'gone' },
      },
      access: { '*': [{}] },
      budgets: { perPrincipal: { tokensPerMinute: 100_000 } },
    },
    audit,
  });
  app = await startRelayApp(module, pki, logger);
  caller = await workload(pki, 'caller');
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app?.close();
  await strict?.standin.close();
  failing?.closeAllConnections();
  await new Promise((resolve) => failing?.close(resolve));
});

async function failure(model: string, stream = false): Promise<InstanceType<typeof OpenAI.APIError>> {
  const c = sdk(app, { client: caller });
  clients.push(c);
  try {
    const res = await c.chat.completions.create({
      model,
      messages: [{ role: 'user', content: PROMPT }],
      stream,
    });
    if (stream) for await (const _ of res as AsyncIterable<unknown>) void _;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error('expected an APIError');
}

function relayLines(): string[] {
  return logger.lines.filter((l) => l.includes('failed:') && l.includes('LlmRelay'));
}

describe('upstream failures reach the SDK typed, and the log without content', () => {
  it('an upstream 500 quoting the prompt: 502 ERR_UPSTREAM_BAD_RESPONSE, one log line with its status', async () => {
    logger.lines.length = 0;
    const e = await failure('failing');
    expect(e).toBeInstanceOf(OpenAI.InternalServerError);
    expect(e).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_BAD_RESPONSE', type: 'server_error' });
    expect(JSON.stringify(e.error)).not.toContain(UPSTREAM_BODY);
    expect(relayLines()).toEqual([
      expect.stringMatching(
        /^warn upstream "failing" failed: ERR_UPSTREAM_BAD_RESPONSE, upstream status 500 \(/,
      ),
    ]);
  });

  it('the LLM refusing our client certificate: its own code; the TLS alert in the log, not in the body', async () => {
    logger.lines.length = 0;
    const e = await failure('strict');
    expect(e).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_CLIENT_CERT_REFUSED' });
    expect(JSON.stringify(e.error)).not.toMatch(/alert|SSL/i);
    const lines = relayLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ERR_UPSTREAM_CLIENT_CERT_REFUSED, TLS alert "certificate required"/);
    expect(strict.standin.stats.requests).toBe(0);
  });

  it('an upstream that is gone: 502 ERR_UPSTREAM_CONNECT (or a TLS failure), typed', async () => {
    const e = await failure('gone');
    expect(e.status).toBe(502);
    expect(String(e.code)).toMatch(/^ERR_UPSTREAM_/);
  });

  it('a stream broken mid-way: the SDK throws a typed APIError from the error event', async () => {
    const e = await failure('failing', true);
    expect(e).toMatchObject({ code: 'ERR_UPSTREAM_BAD_RESPONSE', type: 'server_error' });
    expect(audit.usage().at(-1)).toMatchObject({ outcome: 'failed', status: 200, stream: true });
  });

  it("an error event inside the upstream's stream: passed on with its code, in our words", async () => {
    const e = await failure('errstream', true);
    expect(e).toMatchObject({ code: 'shard_down', type: 'server_error' });
    expect(JSON.stringify(e.error)).not.toMatch(/SENTINEL|shard 7/);
    await vi.waitFor(() =>
      expect(audit.usage().at(-1)).toMatchObject({ model: 'errstream', outcome: 'failed' }),
    );
  });

  it('the same on the Responses API: its error event keeps its code, in our words', async () => {
    const c = sdk(app, { client: caller });
    clients.push(c);
    const stream = await c.responses.create({ model: 'errstream', input: PROMPT, stream: true });
    const events: unknown[] = [];
    for await (const ev of stream) events.push(ev);
    expect(events).toEqual([expect.objectContaining({ type: 'error', code: 'shard_down' })]);
    expect(JSON.stringify(events)).not.toMatch(/SENTINEL|shard 7/);
    await vi.waitFor(() =>
      expect(audit.usage().at(-1)).toMatchObject({ route: 'POST /v1/responses', outcome: 'failed' }),
    );
  });

  it('no prompt, no upstream body, no output in any log line or event', () => {
    const all = [...logger.lines, ...audit.lines].join('\n');
    expect(all).not.toContain(PROMPT);
    expect(all).not.toContain(UPSTREAM_BODY);
    expect(all).not.toContain('first');
  });
});
