import type { WorkloadApiSource } from './workload-api.source.js';

/**
 * TLS material that changes over time, in the shape `@inference-shield/https` (`tls.source`) and
 * `@inference-shield/upstream` (`clientCertificate.source`) take. Structural: neither package
 * depends on this one.
 */
export interface TlsMaterialSource {
  /** The material to use for the next handshakes: certificate chain, key, and the CAs to trust. */
  current(): { readonly cert: string; readonly key: string; readonly ca?: string };
  /** Call `onChange` when {@link TlsMaterialSource.current} changes; returns the unsubscribe function. */
  subscribe(onChange: () => void): () => void;
}

/** Options of {@link x509TlsSource}. */
export interface X509TlsSourceOptions {
  /**
   * Give the trust bundles as `ca` (peers must chain to a CA of a trusted trust domain: inbound
   * mTLS); default true. False leaves `ca` out (the consumer keeps its own trust store).
   */
  trust?: boolean;
}

/**
 * The X.509-SVID of a {@link WorkloadApiSource} as a {@link TlsMaterialSource}: the SVID chain and key
 * as certificate, the bundles of every trusted trust domain as `ca`. Each rotation or bundle change
 * is announced, so new handshakes use it; connections already open keep theirs.
 *
 * @example
 * const source = await WorkloadApiSource.connect();
 * const https = await createHttpsApp(AppModule, {
 *   tls: { source: x509TlsSource(source) },
 *   mtls: { mode: 'required', ca: { tlsSource: true } },
 * });
 */
export function x509TlsSource(
  source: WorkloadApiSource,
  options: X509TlsSourceOptions = {},
): TlsMaterialSource {
  if (typeof options !== 'object' || options === null) throw new TypeError('"options" must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'trust')
      throw new TypeError(`"options" has an unknown option "${key}"; known options: trust`);
  }
  if (options.trust !== undefined && typeof options.trust !== 'boolean') {
    throw new TypeError('"options.trust" must be a boolean');
  }
  const trust = options.trust ?? true;
  return Object.freeze({
    current: () => {
      const svid = source.x509();
      return trust
        ? { cert: svid.chainPem, key: svid.keyPem, ca: svid.bundlesPem }
        : { cert: svid.chainPem, key: svid.keyPem };
    },
    subscribe: (onChange: () => void) => source.onX509(() => onChange()),
  });
}
