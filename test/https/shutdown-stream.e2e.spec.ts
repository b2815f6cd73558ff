import 'reflect-metadata';
import { request } from 'node:https';
import { describe, expect, it } from 'vitest';
import { streamEvents, StreamAppModule } from './fixtures/stream.app.js';
import { startApp } from '../support/harness.js';

interface StreamEnd {
  text: string;
  /** 'end': the response completed; 'aborted' / an error code: it was cut. */
  how: string;
}

/** Open the event stream; resolves with everything read once the response ends or is cut. */
function openStream(port: number, ca: string, opened: () => void): Promise<StreamEnd> {
  return new Promise((resolve) => {
    let text = '';
    const req = request(
      { host: '127.0.0.1', port, path: '/events', servername: 'localhost', ca, agent: false },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text === '') opened();
          text += c;
        });
        res.on('end', () => resolve({ text, how: 'end' }));
        res.on('aborted', () => resolve({ text, how: 'aborted' }));
        res.on('error', (e: NodeJS.ErrnoException) => resolve({ text, how: e.code ?? e.message }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ text, how: e.code ?? e.message }));
    req.end();
  });
}

describe.each(['express', 'fastify'] as const)('a stream longer than the grace period (%s)', (adapter) => {
  it('ends with a final error event the client reads, then a clean end, not a reset', async () => {
    const { pki, https, port } = await startApp(StreamAppModule, {
      timeouts: { shutdownGracePeriodMs: 300 },
      adapter,
    });
    streamEvents.writesAfterEnd = 0;
    let markOpen!: () => void;
    const isOpen = new Promise<void>((resolve) => (markOpen = resolve));
    const stream = openStream(port, pki.ca.certPem, markOpen);
    await isOpen;
    const started = Date.now();
    await https.close();
    const { text, how } = await stream;
    expect(how).toBe('end');
    expect(text).toContain('data: {"tick":');
    const events = text.trim().split('\n\n');
    expect(events.at(-1)).toBe(
      'data: {"error":{"code":"ERR_SHUTTING_DOWN","message":"The server is shutting down. Retry on a new connection."}}',
    );
    expect(Date.now() - started).toBeLessThan(3000);
    // The handler kept writing after the end (as a generator loop does until it sees the close):
    // those writes were dropped, without an uncaught error taking the process down.
    await new Promise((r) => setTimeout(r, 150));
    expect(streamEvents.writesAfterEnd).toBeGreaterThan(0);
  });
});
