import { TLSSocket } from 'node:tls';

/**
 * The TLS socket under a request: `req.socket` for Express and raw Node requests, `req.raw.socket`
 * for Fastify. Undefined when the request did not arrive over TLS. Identity is read from this
 * socket only, never from headers such as `X-Client-Cert`.
 */
export function tlsSocketOf(request: object): TLSSocket | undefined {
  const r = request as { socket?: unknown; raw?: { socket?: unknown } };
  // Express and raw Node first: `socket` is an own property of the request there, while a miss on
  // `raw` walks the whole prototype chain of an Express request on every call.
  const own = r.socket;
  if (own instanceof TLSSocket) return own;
  const socket = r.raw?.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}
