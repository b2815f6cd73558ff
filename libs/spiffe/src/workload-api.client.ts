import { credentials, loadPackageDefinition, Metadata, type Client, type ClientOptions } from '@grpc/grpc-js';
import { fromJSON, type Options } from '@grpc/proto-loader';
import { WORKLOAD_PROTO_DESCRIPTOR } from './workload.proto-descriptor.js';

/** The header every Workload API call carries (Workload Endpoint §2: the agent refuses calls without it). */
export const WORKLOAD_API_HEADER = 'workload.spiffe.io';

/**
 * How proto-loader decodes messages, shared with the test server: field names as in the proto,
 * bytes as Buffers, missing fields as their defaults.
 */
export const PROTO_LOADER_OPTIONS: Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
});

/** The largest message accepted from the agent: a few SVIDs and bundles are far below this. */
export const MAX_WORKLOAD_API_MESSAGE_BYTES = 4 * 1024 * 1024;

/** The generated service constructor, as grpc-js loads it from the descriptor. */
export type WorkloadApiClientConstructor = new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
  options?: ClientOptions,
) => Client;

/** The `SpiffeWorkloadAPI` service definition (also what the test server implements). */
export function workloadApiService(): WorkloadApiClientConstructor & { service: object } {
  const definition = fromJSON(
    WORKLOAD_PROTO_DESCRIPTOR as Parameters<typeof fromJSON>[0],
    PROTO_LOADER_OPTIONS,
  );
  const loaded = loadPackageDefinition(definition) as unknown as Record<
    string,
    WorkloadApiClientConstructor & { service: object }
  >;
  const service = loaded.SpiffeWorkloadAPI;
  if (service === undefined) throw new Error('the vendored workload.proto has no SpiffeWorkloadAPI service');
  return service;
}

/** A client of the agent at `target` (a grpc-js target). No TLS: the socket is local (see the README). */
export function createWorkloadApiClient(target: string): Client {
  const Service = workloadApiService();
  return new Service(target, credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX_WORKLOAD_API_MESSAGE_BYTES,
    'grpc.max_send_message_length': 64 * 1024,
    // Our own reconnect loop decides the pace; no transparent retries of a call.
    'grpc.enable_retries': 0,
    // The agent's socket path is no authority: do not send it as :authority.
    'grpc.default_authority': 'localhost',
  });
}

/** Metadata of every call: the security header the spec requires. */
export function workloadApiMetadata(): Metadata {
  const metadata = new Metadata();
  metadata.set(WORKLOAD_API_HEADER, 'true');
  return metadata;
}
