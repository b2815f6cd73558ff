import { STATUS_CODES } from 'node:http';
import { ShieldError, toHttpResponse, type ShieldErrorCode } from '@inference-shield/core/internal';

/**
 * A complete HTTP/1.1 refusal, as bytes, for the places where no framework runs: plain HTTP on the
 * TLS port, a header overflow or timeout seen by Node's parser, the redirect listener. The status
 * and body come from `toHttpResponse`, the one mapping of codes to responses. Built once at
 * start-up: nothing is formatted per connection.
 */
export function rawRefusal(
  code: ShieldErrorCode,
  extraHeaders: readonly (readonly [string, string])[] = [],
): Buffer {
  const response = toHttpResponse(new ShieldError(code));
  const body = JSON.stringify(response.body);
  const lines = [
    `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(response.headers).map(([name, value]) => `${name}: ${value}`),
    ...extraHeaders.map(([name, value]) => `${name}: ${value}`),
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
}
