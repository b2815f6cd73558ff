/**
 * `@inference-shield/spiffe`: a SPIFFE Workload API client. (Being built: see the package README.)
 */
export const SPIFFE_PACKAGE = '@inference-shield/spiffe';
