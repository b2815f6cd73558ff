import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ShieldError } from '@inference-shield/core/internal';
import { CallerAssertionSigner, type CallerAssertionJwks } from './caller-assertion.js';
import { UpstreamClient } from './upstream.client.js';
import { UpstreamProxy } from './upstream.proxy.js';
import type { UpstreamStats } from './upstream-stats.js';
import type { ResolvedUpstreamModuleOptions, UpstreamModuleOptions } from './upstream-options.interface.js';
import { resolveUpstreamModuleOptions } from './upstream-options.resolver.js';
import { tlsVerificationDisabledByEnv } from './upstream-tls.js';

/** Every upstream client and proxy of the app, created at start-up and closed at shutdown. */
export class UpstreamRegistry implements OnApplicationShutdown {
  private constructor(
    private readonly clients: ReadonlyMap<string, UpstreamClient>,
    private readonly proxies: ReadonlyMap<string, UpstreamProxy>,
    private readonly signer: CallerAssertionSigner | undefined,
  ) {}

  /**
   * Create every client (TLS material loaded, pools built): a bad file or key throws here, so the
   * app does not start. Reports `NODE_TLS_REJECT_UNAUTHORIZED=0` once.
   */
  static async create(
    options: ResolvedUpstreamModuleOptions,
    logger = new Logger('Upstream'),
  ): Promise<UpstreamRegistry> {
    if (tlsVerificationDisabledByEnv()) {
      logger.warn(
        'NODE_TLS_REJECT_UNAUTHORIZED=0 is set: it has no effect on upstream connections (verification is always on), but it disables certificate checks for any other TLS client in this process. Remove it.',
      );
    }
    const clients = new Map<string, UpstreamClient>();
    try {
      const signer =
        options.callerAssertion !== undefined
          ? await CallerAssertionSigner.create(options.callerAssertion)
          : undefined;
      const proxies = new Map<string, UpstreamProxy>();
      for (const [name, upstream] of Object.entries(options.upstreams)) {
        const client = await UpstreamClient.create(upstream, {
          // The refused file's name and problem, never its content.
          onCertificateError: (err) =>
            logger.warn(
              `upstream "${name}": new client certificate refused, previous one kept: ${err.message}`,
            ),
          onCertificateReload: (bundle) =>
            logger.log(
              `upstream "${name}": client certificate ${bundle.fingerprint256} in use for new connections`,
            ),
          // The code and the safe detail (status, OAuth error code, file name), never a token.
          onCredentialRefreshError: (err) =>
            logger.warn(
              `upstream "${name}": token refresh failed, current token kept until it expires: ${err.code}${err.details.detail !== undefined ? ` (${err.details.detail})` : ''}`,
            ),
        });
        clients.set(name, client);
        proxies.set(
          name,
          new UpstreamProxy(client, upstream.proxy, upstream.proxy.assertCaller ? signer : undefined),
        );
      }
      return new UpstreamRegistry(clients, proxies, signer);
    } catch (err) {
      await Promise.all([...clients.values()].map((c) => c.close()));
      throw err;
    }
  }

  /** The names of the configured upstreams. */
  names(): string[] {
    return [...this.clients.keys()];
  }

  /** The client of upstream `name`; a TypeError for a name that was not configured. */
  client(name: string): UpstreamClient {
    const client = this.clients.get(name);
    if (client === undefined)
      throw new TypeError(`no upstream named "${name}"; configured: ${this.names().join(', ')}`);
    return client;
  }

  /** The proxy of upstream `name`. */
  proxy(name: string): UpstreamProxy {
    const proxy = this.proxies.get(name);
    if (proxy === undefined)
      throw new TypeError(`no upstream named "${name}"; configured: ${this.names().join(', ')}`);
    return proxy;
  }

  /** The public keys of caller assertions (serve them for upstreams to verify), if configured. */
  callerAssertionJwks(): CallerAssertionJwks | undefined {
    return this.signer?.jwks();
  }

  /**
   * A signed assertion of the verified caller of `req` for upstream `name`, to send with a
   * `fetch`/SDK call (`{ headers: { [a.header]: a.value } }`); the proxy adds it by itself.
   * Undefined when `callerAssertion` is not configured; `ERR_CALLER_NOT_ALLOWED` when the request
   * has no verified caller (attribution was configured: nobody is asserted by default).
   *
   * @example
   * const a = await registry.callerAssertionFor(req, 'llm');
   * await openai.chat.completions.create(params, { headers: a ? { [a.header]: a.value } : {} });
   */
  async callerAssertionFor(
    req: object,
    name: string,
  ): Promise<{ header: string; value: string } | undefined> {
    const client = this.client(name);
    if (this.signer === undefined) return undefined;
    const caller = this.signer.callerOf(req);
    if (caller === undefined)
      throw new ShieldError('ERR_CALLER_NOT_ALLOWED', { detail: 'no verified caller to assert' });
    return { header: this.signer.header, value: await this.signer.sign(caller, client.origin) };
  }

  /** Counters of every upstream. */
  stats(): UpstreamStats[] {
    return [...this.clients.values()].map((c) => c.stats());
  }

  /** Close every pool (requests in flight finish first). */
  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}

/**
 * The registry without Nest (scripts, benchmarks, other frameworks): the same option checks and
 * start-up loading as `UpstreamModule.forRoot`. Call `close()` when done.
 *
 * @example
 * const upstreams = await createUpstreamRegistry({ upstreams: { llm: { baseUrl: 'https://llm.internal/v1', ca: 'ca.pem' } } });
 * const res = await upstreams.client('llm').fetch('models');
 */
export async function createUpstreamRegistry(options: UpstreamModuleOptions): Promise<UpstreamRegistry> {
  return UpstreamRegistry.create(resolveUpstreamModuleOptions(options));
}
