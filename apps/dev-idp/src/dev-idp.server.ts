/**
 * The dev IdP: oidc-provider mounted on a Node HTTPS server with the dev PKI's `localhost`
 * certificate. The server asks for (but does not require) a client certificate, so RFC 8705
 * clients can authenticate with one and get certificate-bound tokens while discovery and JWKS stay
 * open to everyone.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Agent } from 'undici';
import { loadDevIdpClientsFile, type DevIdpClientsConfig } from './clients-config.js';
import { resolveDevIdpOptions, type DevIdpOptions, type ResolvedDevIdpOptions } from './dev-idp.options.js';
import { DEV_SERVER_TLS_POLICY, refusePlaintext } from '@inference-shield/core/internal';
import { loadDevIdpTls } from './dev-idp.tls.js';
import { answerClientError, ResponsesInFlight } from './oauth-error-response.js';
import { loadOidcProvider } from './oidc-provider.loader.js';
import { buildProviderConfiguration } from './provider-config.js';
import { loadOrCreateKeySet, readKeySet, rotateDevIdpKeys, type DevIdpPrivateJwks } from './signing-keys.js';
import {
  DevIdpUnreachableError,
  createDevIdpAgent,
  requestAccessToken,
  type ClientCertificate,
} from './token-client.js';

/** What {@link DevIdp.getToken} needs. */
export interface DevIdpTokenOptions {
  /** Default `demo-service`. */
  clientId?: string;
  /** Space-separated scopes, e.g. `"models:infer llm:chat"`. */
  scope: string;
  /** RFC 8707 resource indicator; the default resource (the audience) when absent. */
  resource?: string;
  /** Presented in the TLS handshake: authenticates `tls_client_auth` clients and binds tokens (RFC 8705). */
  clientCertificate?: ClientCertificate;
  /** Overrides the secret from the clients file (to test a wrong one). */
  clientSecret?: string;
}

/** A running dev IdP. */
export interface DevIdp {
  /** `https://localhost:<port>` unless configured. */
  readonly issuer: string;
  readonly port: number;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  /** The default resource: the `aud` of tokens requested without `resource`. */
  readonly audience: string;
  /** The dev CA (PEM) that issued the IdP's certificate: what a client must trust. */
  readonly caPem: string;
  /** `kid` of the key that signs new tokens. */
  readonly signingKid: string;
  /** Get an access token (JWT, `typ: at+jwt`) with the `client_credentials` grant. */
  getToken(opts: DevIdpTokenOptions): Promise<string>;
  /** Put a new signing key first in the key set (file and served JWKS); the old ones stay for a while. */
  rotateKeys(): Promise<void>;
  /** Re-read the keys file (after `rotate-cli` from another process). */
  reloadKeys(): Promise<void>;
  /** Stop listening and drop open connections: the IdP is unreachable afterwards. */
  close(): Promise<void>;
}

/** Make `audience` the default resource: rename the default resource, or pick an existing one. */
function withAudience(config: DevIdpClientsConfig, audience: string | undefined): DevIdpClientsConfig {
  if (audience === undefined || audience === config.defaultResource) return config;
  if (config.resources.some((r) => r.identifier === audience))
    return { ...config, defaultResource: audience };
  return {
    ...config,
    defaultResource: audience,
    resources: config.resources.map((r) =>
      r.identifier === config.defaultResource ? { ...r, identifier: audience } : r,
    ),
    // A client limited to the renamed resource keeps it under its new name.
    clients: config.clients.map((c) =>
      c.resources?.includes(config.defaultResource)
        ? { ...c, resources: c.resources.map((r) => (r === config.defaultResource ? audience : r)) }
        : c,
    ),
  };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolvePort((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Start the dev IdP. Everything is loaded and checked before it listens: a bad option, clients
 * file, keys file or certificate rejects the promise and nothing is left running.
 *
 * @example
 * const idp = await startDevIdp({ port: 0, pkiDir: dir, keysFile: `${dir}/jwks.json` });
 * const token = await idp.getToken({ scope: 'models:infer' });
 * await idp.close();
 */
export async function startDevIdp(options: DevIdpOptions = {}): Promise<DevIdp> {
  const opts: ResolvedDevIdpOptions = resolveDevIdpOptions(options);
  const clients = withAudience(loadDevIdpClientsFile(opts.clientsFile), opts.audience);
  const tls = await loadDevIdpTls(opts.pkiDir);
  const { Provider, errors } = await loadOidcProvider();
  let keys: DevIdpPrivateJwks = await loadOrCreateKeySet(opts.keysFile);

  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  // The response being written on each connection, so a parser error arriving while one is being
  // written (a pipelined request's) does not splice an error answer into it.
  const responses = new ResponsesInFlight();
  const server = createServer(
    {
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      ...(tls.crl ? { crl: [...tls.crl] } : {}),
      // RFC 8705: a client may authenticate with a certificate. Not required (discovery and JWKS
      // are public) and not rejected here: oidc-provider checks `socket.authorized` for
      // tls_client_auth, and the thumbprint for self_signed_tls_client_auth.
      requestCert: true,
      rejectUnauthorized: false,
      // The same TLS policy as @inference-shield/https: TLS 1.2+, ECDHE with AEAD suites only, no renegotiation.
      ...DEV_SERVER_TLS_POLICY,
      handshakeTimeout: 10_000,
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      keepAliveTimeout: 5_000,
      maxHeaderSize: 16 * 1024,
    },
    (req, res) => {
      responses.track(req.socket, res);
      if (handler) return handler(req, res);
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close' });
      res.end('{"error":"temporarily_unavailable"}');
    },
  );

  // A request Node's HTTP parser refuses (broken chunked framing, a body cut short, a bad
  // Content-Length) never reaches oidc-provider: answer it with the RFC 6749 5.2 JSON error, not
  // Node's bare 400.
  // Plain HTTP to the TLS port gets the bootstrap's coded 400 instead of a closed socket.
  const gate = refusePlaintext(server, 10_000);

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
    answerClientError(err, socket, responses.current(socket)),
  );

  const port = await listen(server, opts.port, opts.host);
  const issuer = opts.issuer ?? `https://localhost:${port}`;

  const mount = (): void => {
    const provider = new Provider(issuer, buildProviderConfiguration({ clients, keys, errors }));
    handler = provider.callback();
  };
  let agent: Agent | undefined;
  try {
    mount();
    agent = createDevIdpAgent(tls.ca);
  } catch (err) {
    server.close();
    throw err;
  }
  const defaultAgent = agent;

  // Rotations and reloads run one at a time, so the file and the served set never disagree.
  let queue: Promise<void> = Promise.resolve();
  const serialized = (task: () => Promise<void>): Promise<void> => {
    const run = queue.then(task);
    queue = run.catch(() => undefined);
    return run;
  };

  let closed: Promise<void> | undefined;
  const tokenEndpoint = `${issuer}/token`;

  const idp: DevIdp = {
    issuer,
    port,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint,
    audience: clients.defaultResource,
    caPem: tls.caPem,
    get signingKid() {
      return keys.keys[0]?.kid ?? '';
    },
    async getToken(req) {
      if (closed) throw new DevIdpUnreachableError(issuer);
      const clientId = req.clientId ?? 'demo-service';
      const client = clients.clients.find((c) => c.clientId === clientId);
      if (!client) throw new TypeError(`dev IdP has no client ${JSON.stringify(clientId)}`);
      const secret = req.clientSecret ?? client.clientSecret;
      return requestAccessToken(
        {
          tokenEndpoint,
          ca: tls.ca,
          clientId,
          authMethod: client.auth,
          scope: req.scope,
          ...(secret !== undefined ? { clientSecret: secret } : {}),
          ...(req.resource !== undefined ? { resource: req.resource } : {}),
          ...(req.clientCertificate ? { clientCertificate: req.clientCertificate } : {}),
        },
        // One agent per call with a client certificate, so a certificate never leaks into the
        // pooled connections that other calls reuse.
        req.clientCertificate ? undefined : defaultAgent,
      );
    },
    rotateKeys: () =>
      serialized(async () => {
        keys = await rotateDevIdpKeys(opts.keysFile);
        mount();
      }),
    reloadKeys: () =>
      serialized(async () => {
        const onDisk = readKeySet(opts.keysFile);
        if (!onDisk) throw new Error(`dev IdP keys file ${opts.keysFile} disappeared`);
        keys = onDisk;
        mount();
      }),
    close() {
      closed ??= new Promise<void>((resolveClose) => {
        handler = undefined;
        server.close(() => resolveClose());
        server.closeAllConnections();
        gate.destroyAll();
      }).then(() => defaultAgent.close());
      return closed;
    },
  };
  return idp;
}
