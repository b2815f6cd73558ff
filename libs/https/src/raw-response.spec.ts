import { describe, expect, it } from 'vitest';
import { rawRefusal } from './raw-response.js';

describe('rawRefusal', () => {
  it.each([
    ['ERR_HTTP_TO_HTTPS', 400, 'Bad Request'],
    ['ERR_HEADERS_TOO_LARGE', 431, 'Request Header Fields Too Large'],
    ['ERR_REQUEST_TIMEOUT', 408, 'Request Timeout'],
  ] as const)('writes a complete, closing HTTP/1.1 answer for %s', (code, status, text) => {
    const raw = rawRefusal(code, [['X-Extra', '1']]).toString('latin1');
    const [head = '', body = ''] = raw.split('\r\n\r\n');
    const lines = head.split('\r\n');
    expect(lines[0]).toBe(`HTTP/1.1 ${status} ${text}`);
    expect(lines).toContain('Connection: close');
    expect(lines).toContain('X-Extra: 1');
    expect(lines).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    expect(JSON.parse(body)).toMatchObject({ code });
  });
});
