/**
 * `@inference-shield/spiffe/internal`: what the test Workload API server shares with the client
 * (the vendored proto's service definition and the decoding options). Not a public API.
 */
export { workloadApiService, PROTO_LOADER_OPTIONS, WORKLOAD_API_HEADER } from './workload-api.client.js';
export { WORKLOAD_PROTO_DESCRIPTOR } from './workload.proto-descriptor.js';
export { splitDerSequences } from './der.js';
