import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertObject,
  parseSpiffeId,
} from '@inference-shield/core/internal';
import {
  parseWorkloadApiAddress,
  SPIFFE_ENDPOINT_SOCKET,
  type WorkloadApiAddress,
} from './workload-api.address.js';

/** Where the source reports what happens (a Nest `Logger` or `LoggerService` fits). Never given key material or tokens. */
export interface SpiffeLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Options of {@link WorkloadApiSource.connect}. */
export interface WorkloadApiSourceOptions {
  /**
   * The agent's address: `unix:///run/spire/agent.sock` (or `unix:path`), or `tcp://IP:port` with
   * {@link WorkloadApiSourceOptions.allowTcp}. Default: the `SPIFFE_ENDPOINT_SOCKET` environment
   * variable; neither given is a TypeError.
   */
  address?: string;
  /** Accept a `tcp:` address (the Workload API over TCP has no transport security); default false. */
  allowTcp?: boolean;
  /**
   * How long `connect()` waits for the first valid material (the agent may be starting, or not yet
   * have an identity for this workload) before it refuses with `ERR_SPIFFE_AGENT_UNAVAILABLE`;
   * default 10000 (100 to 600000).
   */
  startupTimeoutMs?: number;
  /** Stream X.509-SVIDs and bundles (`FetchX509SVID`); default true. */
  x509?: boolean;
  /** Use the SVID with this SPIFFE ID when the agent offers several; default: the first (the spec's default). */
  spiffeId?: string;
  /** Stream JWT bundles (`FetchJWTBundles`), for checking other workloads' JWT-SVIDs; default false. */
  jwtBundles?: boolean;
  /** Deadline of one `FetchJWTSVID` call; default 5000 (100 to 60000). */
  jwtSvidTimeoutMs?: number;
  /** Audience sets whose JWT-SVIDs are cached; default 64 (1 to 4096). The oldest is dropped first. */
  jwtSvidCacheSize?: number;
  /** First delay before reconnecting a broken stream, doubled on each failure; default 100 (10 to 60000). */
  reconnectInitialDelayMs?: number;
  /** Longest delay between reconnections; default 5000 (100 to 300000). */
  reconnectMaxDelayMs?: number;
  /** Where updates, refusals and disconnections are reported; default: warnings and errors on the console. */
  logger?: SpiffeLogger;
}

/** {@link WorkloadApiSourceOptions} checked, with every default filled in. */
export interface ResolvedWorkloadApiSourceOptions {
  readonly address: WorkloadApiAddress;
  readonly startupTimeoutMs: number;
  readonly x509: boolean;
  readonly spiffeId: string | undefined;
  readonly jwtBundles: boolean;
  readonly jwtSvidTimeoutMs: number;
  readonly jwtSvidCacheSize: number;
  readonly reconnectInitialDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly logger: SpiffeLogger;
}

const KNOWN = [
  'address',
  'allowTcp',
  'startupTimeoutMs',
  'x509',
  'spiffeId',
  'jwtBundles',
  'jwtSvidTimeoutMs',
  'jwtSvidCacheSize',
  'reconnectInitialDelayMs',
  'reconnectMaxDelayMs',
  'logger',
] as const;

/** Warnings and errors only: a library does not print routine updates unless asked. */
const CONSOLE_LOGGER: SpiffeLogger = Object.freeze({
  log: () => undefined,
  warn: (message: string) => console.warn(`[SpiffeWorkloadApi] ${message}`),
  error: (message: string) => console.error(`[SpiffeWorkloadApi] ${message}`),
});

function integer(
  o: Record<string, unknown>,
  key: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = o[key];
  if (value === undefined) return fallback;
  assertInteger(key, value, min, max);
  return value;
}

function flag(o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = o[key];
  if (value === undefined) return fallback;
  assertBoolean(key, value);
  return value;
}

/**
 * Check the options once (a bad field is a TypeError naming it; unknown keys are refused) and
 * fill in the defaults. `env` is where `SPIFFE_ENDPOINT_SOCKET` is read.
 */
export function resolveWorkloadApiSourceOptions(
  options: unknown,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedWorkloadApiSourceOptions {
  assertKnownKeys('options', options ?? {}, KNOWN);
  const o = (options ?? {}) as Record<string, unknown>;
  const allowTcp = flag(o, 'allowTcp', false);
  const fromEnv = env[SPIFFE_ENDPOINT_SOCKET];
  if (o.address === undefined && (fromEnv === undefined || fromEnv === '')) {
    throw new TypeError(`"address" is required when ${SPIFFE_ENDPOINT_SOCKET} is not set`);
  }
  const address =
    o.address !== undefined
      ? parseWorkloadApiAddress('address', o.address, allowTcp)
      : parseWorkloadApiAddress(SPIFFE_ENDPOINT_SOCKET, fromEnv, allowTcp);
  const x509 = flag(o, 'x509', true);
  const jwtBundles = flag(o, 'jwtBundles', false);
  let spiffeId: string | undefined;
  if (o.spiffeId !== undefined) {
    const parsed = typeof o.spiffeId === 'string' ? parseSpiffeId(o.spiffeId) : undefined;
    if (parsed === undefined || parsed.path === '') {
      throw new TypeError('"spiffeId" must be a workload SPIFFE ID such as spiffe://example.org/inference');
    }
    spiffeId = o.spiffeId as string;
  }
  let logger = CONSOLE_LOGGER;
  if (o.logger !== undefined) {
    assertObject('logger', o.logger);
    const l = o.logger as Record<string, unknown>;
    if (typeof l.log !== 'function' || typeof l.warn !== 'function' || typeof l.error !== 'function') {
      throw new TypeError('"logger" must have log, warn and error methods');
    }
    logger = o.logger as unknown as SpiffeLogger;
  }
  const reconnectInitialDelayMs = integer(o, 'reconnectInitialDelayMs', 100, 10, 60_000);
  const reconnectMaxDelayMs = integer(o, 'reconnectMaxDelayMs', 5000, 100, 300_000);
  if (reconnectMaxDelayMs < reconnectInitialDelayMs) {
    throw new TypeError('"reconnectMaxDelayMs" must not be less than "reconnectInitialDelayMs"');
  }
  return Object.freeze({
    address,
    startupTimeoutMs: integer(o, 'startupTimeoutMs', 10_000, 100, 600_000),
    x509,
    spiffeId,
    jwtBundles,
    jwtSvidTimeoutMs: integer(o, 'jwtSvidTimeoutMs', 5000, 100, 60_000),
    jwtSvidCacheSize: integer(o, 'jwtSvidCacheSize', 64, 1, 4096),
    reconnectInitialDelayMs,
    reconnectMaxDelayMs,
    logger,
  });
}
