import { isIP } from 'node:net';

/** The environment variable the SPIFFE Workload API spec names for the agent's address. */
export const SPIFFE_ENDPOINT_SOCKET = 'SPIFFE_ENDPOINT_SOCKET';

/** Longest address accepted (a unix socket path is at most 108 bytes on Linux). */
const MAX_ADDRESS_LENGTH = 4096;

/** Where the Workload API agent listens, as grpc-js takes it, and what it was given as. */
export interface WorkloadApiAddress {
  /** The grpc-js target: `unix:///path`, `ipv4:a.b.c.d:port` or `ipv6:[::1]:port`. */
  readonly target: string;
  /** `unix` or `tcp`. */
  readonly transport: 'unix' | 'tcp';
  /** The address as configured, for messages (a path or host:port, never a secret). */
  readonly shown: string;
}

/**
 * Parse a Workload API address (SPIFFE Workload Endpoint §4): `unix:///absolute/path` (also
 * `unix:/absolute/path` and `unix:path`, which grpc-js reads relative to the working directory), or
 * `tcp://IP:port` (an IP address, no host name, no path). A TCP address is refused unless
 * `allowTcp`: the Workload API has no transport security of its own, so over TCP any process that
 * can reach the port can fetch this workload's identity, and any host that can take the address
 * can hand it one. `field` names the option in the TypeError.
 */
export function parseWorkloadApiAddress(
  field: string,
  value: unknown,
  allowTcp: boolean,
): WorkloadApiAddress {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ADDRESS_LENGTH) {
    throw new TypeError(`"${field}" must be a Workload API address such as unix:///run/spire/agent.sock`);
  }
  // No control characters, whitespace, query or fragment anywhere (SPIFFE Workload Endpoint §4).
  if (/[\s?#]/.test(value) || [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new TypeError(`"${field}" must not hold whitespace, control characters, a query or a fragment`);
  }
  if (value.startsWith('unix:')) {
    const rest = value.slice('unix:'.length);
    let path: string;
    if (rest.startsWith('//')) {
      // unix://host/path names a host: a unix socket has none.
      if (!rest.startsWith('///')) {
        throw new TypeError(
          `"${field}" must be unix:///absolute/path (a unix URI has no host), got ${JSON.stringify(value)}`,
        );
      }
      path = rest.slice(2);
    } else {
      path = rest;
    }
    if (path.length === 0 || path === '/' || path.endsWith('/')) {
      throw new TypeError(`"${field}" must name a socket file, got ${JSON.stringify(value)}`);
    }
    return Object.freeze({
      target: path.startsWith('/') ? `unix://${path}` : `unix:${path}`,
      transport: 'unix',
      shown: path,
    });
  }
  if (value.startsWith('tcp:')) {
    if (!allowTcp) {
      throw new TypeError(
        `"${field}" is a tcp: address; the Workload API has no transport security of its own, so TCP needs "allowTcp: true" (use a unix socket where you can)`,
      );
    }
    const match = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d{1,5})$/.exec(value);
    const host = match?.[1]?.replace(/^\[|\]$/g, '');
    const port = Number(match?.[2]);
    const family = host === undefined ? 0 : isIP(host);
    if (host === undefined || family === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(
        `"${field}" must be tcp://IP:port (an IP address, not a host name), got ${JSON.stringify(value)}`,
      );
    }
    return Object.freeze({
      target: family === 4 ? `ipv4:${host}:${port}` : `ipv6:[${host}]:${port}`,
      transport: 'tcp',
      shown: family === 4 ? `${host}:${port}` : `[${host}]:${port}`,
    });
  }
  throw new TypeError(`"${field}" must start with unix: or tcp:, got ${JSON.stringify(value.slice(0, 80))}`);
}
