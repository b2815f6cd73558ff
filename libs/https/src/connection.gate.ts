import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { tcpSocketUnder, takeTlsConnectionListener } from '@inference-shield/core/internal';
import { rawRefusal } from './raw-response.js';

/** The first byte of every TLS record carrying a handshake message (RFC 8446 §5.1, ContentType 22). */
const TLS_HANDSHAKE = 0x16;
/** After refusing plain HTTP, how long the client has to read the answer and close. */
const PLAINTEXT_LINGER_MS = 1000;

/**
 * The address a per-address cap counts under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its
 * /64, the block one host or one customer line is usually given.
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return '?';
  const zone = address.indexOf('%');
  if (zone >= 0) address = address.slice(0, zone);
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!address.includes(':')) return address;
  // Expand "::" so the first four groups are the /64.
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** What the bootstrap keeps of the connection gate of one server. */
export interface ConnectionGate {
  /** Destroy every connection still open (the end of a graceful shutdown). */
  destroyAll(): void;
  /** Resolves once no connection is open. */
  drained(): Promise<void>;
  /** Connections accepted and not yet closed (read by the telemetry gauge, at collection). */
  open(): number;
}

/** The per-address cap of {@link installConnectionGate}: off when `maxPerAddress` is 0. */
export interface PerAddressCap {
  readonly maxPerAddress: number;
  /** Called for each connection refused at the cap (reporting). */
  readonly onRefused?: () => void;
}

/**
 * Puts a one-byte check in front of the TLS server's own connection listener. A connection whose
 * first byte starts a TLS handshake record goes to TLS unchanged (the byte is pushed back). An
 * ASCII letter means plain HTTP sent to the HTTPS port: it gets a short `400 ERR_HTTP_TO_HTTPS` and
 * is closed before any HTTP parser or handler sees it (nginx's 497 idea). Anything else (SSLv2
 * hellos, garbage) is closed at once. A connection that sends nothing is closed after
 * `handshakeMs`, so idle sockets cannot pile up before the TLS handshake timer even starts, and one
 * that has not finished its TLS handshake `handshakeMs` after it was accepted is closed then (TLS's
 * own timer starts only at the first byte).
 *
 * The check costs one `data` event per connection, not per request.
 */
export function installConnectionGate(
  server: TlsServer,
  handshakeMs: number,
  { maxPerAddress, onRefused }: PerAddressCap = { maxPerAddress: 0 },
): ConnectionGate {
  // Fail closed: a server we do not recognise (not one TLS connection listener) throws here.
  const handToTls = takeTlsConnectionListener(server);

  const plaintextRefusal = rawRefusal('ERR_HTTP_TO_HTTPS');
  const sockets = new Set<Socket>();
  let waiters: (() => void)[] = [];

  function forget(this: Socket): void {
    sockets.delete(this);
    clearTimeout(pending.get(this));
    if (sockets.size === 0 && waiters.length > 0) {
      const done = waiters;
      waiters = [];
      for (const resolve of done) resolve();
    }
  }

  function destroySelf(this: Socket): void {
    this.destroy();
  }

  function onFirstChunk(this: Socket, chunk: Buffer): void {
    this.setTimeout(0);
    this.removeListener('timeout', destroySelf);
    const first = chunk[0];
    if (first === TLS_HANDSHAKE && parentKnown !== false) {
      // TLS starts its own handshakeMs timer now; this one keeps the whole from accept to the end
      // of the handshake within handshakeMs (else one byte just before the deadline doubled it).
      const deadline = setTimeout(destroyUnlessSecure, remainingMs(this), this);
      deadline.unref();
      pending.set(this, deadline);
    }
    if (first === TLS_HANDSHAKE) {
      // Push the bytes back; TLSSocket reads what the raw socket has buffered before its handle.
      this.pause();
      this.unshift(chunk);
      handToTls.call(server, this);
      return;
    }
    if (first !== undefined && ((first >= 0x41 && first <= 0x5a) || (first >= 0x61 && first <= 0x7a))) {
      // An HTTP method: answer in plain text (the client can read nothing else), then close. The
      // rest of what it sends is read and dropped until it closes or the linger time ends, so the
      // answer is not lost to a TCP reset.
      this.end(plaintextRefusal);
      this.resume();
      setTimeout(() => this.destroy(), PLAINTEXT_LINGER_MS).unref();
      return;
    }
    this.destroy();
  }

  // Accept time of each raw socket, and the absolute handshake deadline armed at its first byte.
  const acceptedAt = new WeakMap<Socket, number>();
  const pending = new WeakMap<Socket, NodeJS.Timeout>();
  const secured = new WeakSet<Socket>();
  // Finds the raw socket under each TLS socket (see core's node-internals.ts). Checked on the first
  // handshake: where it is missing, the absolute deadline is not used (the TLS handshake timer
  // alone applies, as before) rather than cut connections.
  let parentKnown: boolean | undefined;
  function remainingMs(socket: Socket): number {
    const started = acceptedAt.get(socket) ?? Date.now();
    return Math.max(1, handshakeMs - (Date.now() - started));
  }
  function destroyUnlessSecure(socket: Socket): void {
    pending.delete(socket);
    if (!secured.has(socket) && parentKnown !== false) socket.destroy();
  }
  server.on('secureConnection', (tlsSocket: Socket) => {
    const rawSocket = tcpSocketUnder(tlsSocket);
    if (rawSocket === undefined) {
      parentKnown = false;
      return;
    }
    parentKnown = true;
    secured.add(rawSocket);
    clearTimeout(pending.get(rawSocket));
    pending.delete(rawSocket);
  });

  // Open connections per client address (IPv6 per /64), when a per-address cap is set.
  const perAddress = new Map<string, number>();

  server.on('connection', (socket: Socket) => {
    if (maxPerAddress > 0) {
      const key = addressKey(socket.remoteAddress);
      const open = perAddress.get(key) ?? 0;
      if (open >= maxPerAddress) {
        socket.destroy();
        onRefused?.();
        return;
      }
      perAddress.set(key, open + 1);
      socket.once('close', () => {
        const left = (perAddress.get(key) ?? 1) - 1;
        if (left <= 0) perAddress.delete(key);
        else perAddress.set(key, left);
      });
    }
    acceptedAt.set(socket, Date.now());
    sockets.add(socket);
    socket.once('close', forget);
    // Errors of the raw socket (reset by the peer) only end it; the TLS socket has its own handler.
    socket.on('error', destroySelf);
    socket.setTimeout(handshakeMs);
    socket.once('timeout', destroySelf);
    socket.once('data', onFirstChunk);
  });

  return {
    destroyAll() {
      for (const socket of sockets) socket.destroy();
    },
    drained() {
      if (sockets.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    open() {
      return sockets.size;
    },
  };
}
