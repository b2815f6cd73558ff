import 'reflect-metadata';
import { mkdtempSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Module, type LoggerService } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ShieldExceptionFilter } from '@inference-shield/core';
import { createTestPki, type TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { UpstreamModule } from '@inference-shield/upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatController } from './chat.controller.js';
import { CHAT_OPTIONS } from './chat.constants.js';

const PROMPT = 'PROMPT-SENTINEL-7f3a';
const UPSTREAM_BODY = 'UPSTREAM-BODY-SENTINEL-91c2';

/** Keeps every log line. */
class CaptureLogger implements LoggerService {
  readonly lines: string[] = [];
  private keep(...parts: unknown[]): void {
    this.lines.push(parts.map((p) => (p instanceof Error ? `${p.message} ${p.stack}` : String(p))).join(' '));
  }
  log(...p: unknown[]): void {
    this.keep(...p);
  }
  error(...p: unknown[]): void {
    this.keep(...p);
  }
  warn(...p: unknown[]): void {
    this.keep(...p);
  }
  debug(...p: unknown[]): void {
    this.keep(...p);
  }
  verbose(...p: unknown[]): void {
    this.keep(...p);
  }
}

function post(port: number, ca: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/chat/completions',
        method: 'POST',
        servername: 'localhost',
        ca,
        agent: false,
        headers: { 'Content-Type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('the chat route logs upstream failures, without bodies or prompts', () => {
  const logger = new CaptureLogger();
  let pki: TestPki;
  let upstream: Server;
  let upstreamPort: number;
  let https: HttpsApp;
  let port: number;

  beforeAll(async () => {
    pki = await createTestPki(mkdtempSync(join(tmpdir(), 'chat-logs-')));
    // A real TLS upstream that fails with a body quoting what it was sent.
    upstream = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
      req.resume();
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `${UPSTREAM_BODY} ${PROMPT}`, type: 'server_error' } }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;

    @Module({
      imports: [
        UpstreamModule.forRoot({
          upstreams: {
            llm: { baseUrl: `https://localhost:${upstreamPort}/v1`, ca: { pem: pki.ca.certPem } },
          },
        }),
      ],
      controllers: [ChatController],
      providers: [
        { provide: CHAT_OPTIONS, useValue: { model: 'stand-in' } },
        { provide: APP_FILTER, useClass: ShieldExceptionFilter },
      ],
    })
    class ChatTestModule {}

    https = await createHttpsApp(ChatTestModule, {
      tls: { cert: pki.server.cert, key: pki.server.key },
      reload: { watch: false, sighup: false },
      nest: { logger },
    });
    port = (await https.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await https?.close();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  it.each([false, true])(
    'an upstream 500 (stream: %s) → 502, and one log line naming code, upstream and cause class',
    async (stream) => {
      logger.lines.length = 0;
      const res = await post(port, pki.ca.certPem, { messages: [{ role: 'user', content: PROMPT }], stream });
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'ERR_UPSTREAM_BAD_RESPONSE' });
      const lines = logger.lines.filter((l) => l.includes('ERR_UPSTREAM_BAD_RESPONSE'));
      expect(lines).toEqual([
        'upstream "llm" failed: ERR_UPSTREAM_BAD_RESPONSE (InternalServerError, upstream status 500) ChatController',
      ]);
      const all = logger.lines.join('\n');
      expect(all).not.toContain(PROMPT);
      expect(all).not.toContain(UPSTREAM_BODY);
    },
  );

  it('an unreachable upstream → 502, logged with its code and cause class', async () => {
    await new Promise((resolve) => upstream.close(resolve));
    upstream.closeAllConnections();
    logger.lines.length = 0;
    const res = await post(port, pki.ca.certPem, { messages: [{ role: 'user', content: PROMPT }] });
    expect(res.status).toBe(502);
    const code = (JSON.parse(res.body) as { code: string }).code;
    expect(code).toMatch(/^ERR_UPSTREAM_/);
    const lines = logger.lines.filter((l) => l.startsWith('upstream "llm" failed:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^upstream "llm" failed: ${code} \\(\\w+\\) ChatController$`));
    expect(logger.lines.join('\n')).not.toContain(PROMPT);
  });
});
