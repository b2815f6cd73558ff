/**
 * `@inference-shield/spiffe`: a SPIFFE Workload API client for Node.js. It streams the workload's
 * X.509-SVID and trust bundles from the local agent (SPIRE or any conforming one) with rotation,
 * fetches JWT-SVIDs per audience, streams JWT bundles, keeps the last valid material while the agent
 * is away, and feeds `@inference-shield/https` and `@inference-shield/upstream` through
 * {@link x509TlsSource}.
 */
export {
  WorkloadApiSource,
  type WorkloadApiState,
  type WorkloadApiStatus,
  type JwtSvidRequestOptions,
} from './workload-api.source.js';
export type { WorkloadApiSourceOptions, SpiffeLogger } from './workload-api-source.options.js';
export type { X509SvidMaterial } from './x509-svid.parse.js';
export type { JwtSvid, JwtBundle } from './jwt-svid.parse.js';
export { x509TlsSource, type TlsMaterialSource, type X509TlsSourceOptions } from './tls-source.adapter.js';
export { SPIFFE_ENDPOINT_SOCKET } from './workload-api.address.js';
