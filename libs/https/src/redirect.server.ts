import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ShieldError, toHttpResponse } from '@inference-shield/core/internal';
import type { ResolvedHttpsOptions } from './https-options.interface.js';

/** Longest request target copied into `Location`; longer ones redirect to `/`. */
const MAX_PATH_LENGTH = 2048;

/**
 * The optional plain-HTTP listener (port 80). It is a bare Node server, never the Nest app: no
 * handler, guard or body parser can run on plaintext. `GET` and `HEAD` get a `308` to the HTTPS
 * URL (308 keeps the method, RFC 9110 §15.4.9); everything else gets a `400`, because a client that
 * sent a body in clear must learn to use HTTPS, not have it forwarded. The `Location` host comes
 * from configuration only, never from the `Host` header (no open redirect). Every answer closes
 * the connection.
 */
export function createRedirectServer(options: ResolvedHttpsOptions, httpsPort: number): Server {
  const redirect = options.redirect;
  if (redirect === undefined) throw new Error('createRedirectServer needs the "redirect" option');
  const port = redirect.targetPort ?? httpsPort;
  const origin = `https://${redirect.targetHost}${port === 443 ? '' : `:${port}`}`;
  const refusal = toHttpResponse(new ShieldError('ERR_HTTP_TO_HTTPS'));
  const refusalBody = JSON.stringify(refusal.body);

  const server = createServer(
    {
      maxHeaderSize: options.limits.maxHeaderBytes,
      headersTimeout: options.timeouts.headersMs,
      requestTimeout: options.timeouts.requestMs,
      connectionsCheckingInterval: options.timeouts.connectionsCheckingIntervalMs,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      res.shouldKeepAlive = false;
      if (req.method === 'GET' || req.method === 'HEAD') {
        const url = req.url ?? '/';
        // Only origin-form targets ("/path?query") are copied; absolute-form and "*" go to "/".
        const path =
          url.startsWith('/') && !url.startsWith('//') && url.length <= MAX_PATH_LENGTH ? url : '/';
        try {
          res.writeHead(308, { Location: origin + path, 'Content-Length': '0', Connection: 'close' });
          res.end();
          return;
        } catch {
          // A target with characters a header cannot carry: fall through to the 400.
        }
      }
      res.writeHead(refusal.status, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(refusalBody)),
        Connection: 'close',
      });
      res.end(refusalBody);
    },
  );
  server.keepAliveTimeout = options.timeouts.keepAliveMs;
  server.on('clientError', (_err: Error, socket) => socket.destroy());
  // The plain listener answers anyone: the same bound on open connections as the HTTPS one.
  server.maxConnections = options.limits.maxConnections;
  return server;
}
