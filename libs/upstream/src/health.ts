/**
 * `@inference-shield/upstream/health`: health indicators for `@nestjs/terminus` (an optional peer,
 * loaded only by this entry): can each upstream be reached, our client certificate accepted; and
 * the expiry of the certificates the upstream clients use.
 *
 * @packageDocumentation
 */
import { Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  deadlineSignal,
  isShieldError,
} from '@inference-shield/core/internal';
import { InjectUpstreamRegistry } from './inject.decorators.js';
import type { UpstreamClient } from './upstream.client.js';
import type { UpstreamRegistry } from './upstream.registry.js';
import type { UpstreamCertificateValidity } from './upstream.telemetry.js';

/** Options of {@link UpstreamHealthIndicator.reachable}. */
export interface UpstreamReachableOptions {
  /** Down when the upstream cannot be reached; default false (reported, still up). */
  readonly required?: boolean;
  /** The probe's bound, in ms; default 3000 (100 to 30000). */
  readonly timeoutMs?: number;
  /** How long a probe's result is reused, in ms; default 15000 (1000 to 600000). */
  readonly cacheMs?: number;
}

/** The outcome of one probe. */
export interface UpstreamProbe {
  readonly reachable: boolean;
  /** HTTP status of the probe's answer (any status: the TLS handshake and our certificate passed). */
  readonly httpStatus?: number;
  /**
   * Why it failed: the catalogue code (`ERR_UPSTREAM_CLIENT_CERT_REFUSED` when the upstream refused
   * our client certificate with a TLS alert, `ERR_UPSTREAM_CERT_UNTRUSTED`, `ERR_UPSTREAM_CONNECT`,
   * `ERR_UPSTREAM_TIMEOUT`, …).
   */
  readonly code?: string;
  /** ISO time of the probe. */
  readonly checkedAt: string;
}

/** Options of {@link UpstreamHealthIndicator.certificates}. */
export interface UpstreamCertificateHealthOptions {
  /**
   * A certificate this close to its end, in days, is reported as a `warning` while the indicator
   * stays up; default 14 (0 to 365). Past its end: down.
   */
  readonly warnDays?: number;
}

/** One certificate of an upstream client, as the certificate indicator reports it. */
export interface UpstreamCertificateDetail {
  /** `client`: our client certificate (its leaf); `ca`: a CA certificate trusted for the upstream. */
  readonly kind: 'client' | 'ca';
  /** The upstream's name. */
  readonly upstream: string;
  /** The file it was read from, or the option that gave it. */
  readonly file: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  readonly fingerprint: string;
  /** ISO 8601 end: `notAfter`. */
  readonly until: string;
  /** Whole days left (negative once past). */
  readonly daysLeft: number;
  /**
   * From `clientCertificateSource` (a SPIFFE X.509-SVID): renewed by its source, so never a
   * warning however close its end; down only once it has ended (the source stopped renewing it).
   */
  readonly renewedBySource?: true;
}

/** The verdict of {@link UpstreamHealthIndicator.certificates}: up or down, and what it reports. */
export interface UpstreamCertificateHealth {
  readonly up: boolean;
  readonly details: {
    /** Every certificate, soonest end first. */
    readonly items: readonly UpstreamCertificateDetail[];
    /** Certificates within `warnDays` of their end (the indicator stays up). */
    readonly warning?: string;
    /** Certificates past their end (the indicator is down). */
    readonly expired?: string;
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Terminus indicators of `UpstreamModule`'s upstreams. Provide it beside `TerminusModule`; without
 * `UpstreamModule` in the app, `certificates()` is up with no items and `reachable()` throws a
 * `TypeError` (no such upstream).
 *
 * A probe is one `HEAD` of the base URL through the upstream's own pool (the same TLS policy, CA,
 * pins and client certificate as real calls) without the credential: no token is asked for or
 * sent, so a probe never spends a token request, and a failure is about the connection alone.
 * It is bounded by `timeoutMs`. Its result is reused for `cacheMs`; after that, the next health
 * call starts one new probe and answers with the previous result meanwhile (only the very first
 * call waits), so a slow upstream never makes a readiness probe time out, and concurrent health
 * calls share one probe: a burst of probes never becomes a burst of upstream requests. An
 * unreachable upstream, or one refusing our certificate, is reported in the details; it makes the
 * indicator down only with `required: true` (an upstream outage is rarely a reason to pull this
 * replica from the balancer).
 *
 * @example
 * ready() {
 *   return this.health.check([
 *     () => this.upstreams.reachable('llm'),
 *     () => this.upstreams.certificates('upstreamCertificates', { warnDays: 14 }),
 *   ]);
 * }
 */
@Injectable()
export class UpstreamHealthIndicator {
  private readonly probes = new Map<string, ProbeEntry>();

  constructor(
    private readonly indicators: HealthIndicatorService,
    @Optional() @InjectUpstreamRegistry() private readonly registry: UpstreamRegistry | null = null,
  ) {}

  /** Probes (or reuses the last probe of) the upstream `name`; the key is `upstream:<name>` by default. */
  async reachable(
    name: string,
    options: UpstreamReachableOptions = {},
    key = `upstream:${name}`,
  ): Promise<HealthIndicatorResult> {
    assertKnownKeys('reachable options', options, ['required', 'timeoutMs', 'cacheMs']);
    const required: unknown = options.required ?? false;
    assertBoolean('reachable options.required', required);
    const timeoutMs: unknown = options.timeoutMs ?? 3000;
    assertInteger('reachable options.timeoutMs', timeoutMs, 100, 30_000);
    const cacheMs: unknown = options.cacheMs ?? 15_000;
    assertInteger('reachable options.cacheMs', cacheMs, 1000, 600_000);
    if (this.registry === null) {
      throw new TypeError(`no upstream named "${name}": UpstreamModule is not imported`);
    }
    const client = this.registry.client(name);
    const result = await this.latest(name, client, timeoutMs, cacheMs);
    const session = this.indicators.check(key);
    return result.reachable || !required ? session.up({ ...result }) : session.down({ ...result });
  }

  /**
   * The client certificate and CA certificates of every upstream: up with a `warning` when one ends
   * within `warnDays` (not for a certificate its `clientCertificateSource` renews, such as an
   * hour-long SVID), down when one has ended (every call through that upstream would fail its
   * handshake). Details name the upstream, the file, the fingerprint and the dates, nothing secret.
   * Read from the material in use at each call (a rotated certificate is seen at once).
   */
  certificates<const Key extends string = 'upstreamCertificates'>(
    key: Key = 'upstreamCertificates' as Key,
    options: UpstreamCertificateHealthOptions = {},
  ): HealthIndicatorResult<Key> {
    assertKnownKeys('certificates options', options, ['warnDays']);
    const warnDays: unknown = options.warnDays ?? 14;
    assertInteger('certificates options.warnDays', warnDays, 0, 365);
    const session = this.indicators.check(key);
    const registry = this.registry;
    const certificates =
      registry === null
        ? []
        : registry
            .names()
            .map((name) => ({ upstream: name, certificates: registry.client(name).certificates() }));
    const health = upstreamCertificateHealth(certificates, Date.now(), warnDays);
    return health.up ? session.up(health.details) : session.down(health.details);
  }

  /** The last probe's result; a new probe when it is older than `cacheMs` (awaited only if none is done). */
  private async latest(
    name: string,
    client: UpstreamClient,
    timeoutMs: number,
    cacheMs: number,
  ): Promise<UpstreamProbe> {
    let entry = this.probes.get(name);
    if (entry === undefined) {
      entry = { at: Date.now(), running: undefined, last: undefined };
      this.probes.set(name, entry);
    }
    const stale = entry.last === undefined || Date.now() - entry.at >= cacheMs;
    if (stale && entry.running === undefined) {
      const current = entry;
      current.at = Date.now();
      current.running = probe(client, timeoutMs).then((result) => {
        current.last = result;
        current.running = undefined;
        return result;
      });
    }
    return entry.last ?? (entry.running as Promise<UpstreamProbe>);
  }
}

interface ProbeEntry {
  /** When the last probe started. */
  at: number;
  running: Promise<UpstreamProbe> | undefined;
  last: UpstreamProbe | undefined;
}

async function probe(client: UpstreamClient, timeoutMs: number): Promise<UpstreamProbe> {
  const checkedAt = new Date().toISOString();
  const deadline = deadlineSignal(timeoutMs);
  try {
    const httpStatus = await client.probe(deadline.signal);
    return { reachable: true, httpStatus, checkedAt };
  } catch (err) {
    // A probe cut by its own deadline is the upstream not answering in time.
    const code = deadline.signal.aborted ? 'ERR_UPSTREAM_TIMEOUT' : undefined;
    return {
      reachable: false,
      code: code ?? (isShieldError(err) ? err.code : 'ERR_UPSTREAM_CONNECT'),
      checkedAt,
    };
  } finally {
    deadline.clear();
  }
}

/**
 * Pure: the health of the upstreams' certificates at `now` (epoch ms), with `warnDays` of warning.
 */
export function upstreamCertificateHealth(
  upstreams: readonly {
    readonly upstream: string;
    readonly certificates: readonly UpstreamCertificateValidity[];
  }[],
  now: number,
  warnDays: number,
): UpstreamCertificateHealth {
  const items = upstreams
    .flatMap(({ upstream, certificates }) => certificates.map((c) => item(upstream, c, now)))
    .sort((a, b) => Date.parse(a.until) - Date.parse(b.until));
  const expired = items.filter((d) => Date.parse(d.until) <= now);
  if (expired.length > 0) {
    return { up: false, details: { items, expired: expired.map((d) => describe(d, true)).join('; ') } };
  }
  const soon = items.filter(
    (d) => d.renewedBySource !== true && Date.parse(d.until) - now < warnDays * DAY_MS,
  );
  if (soon.length > 0) {
    return { up: true, details: { items, warning: soon.map((d) => describe(d, false)).join('; ') } };
  }
  return { up: true, details: { items } };
}

function item(upstream: string, c: UpstreamCertificateValidity, now: number): UpstreamCertificateDetail {
  return {
    kind: c.role === 'upstream_ca' ? 'ca' : 'client',
    upstream,
    file: c.file,
    fingerprint: c.fingerprint,
    until: c.validTo.toISOString(),
    daysLeft: Math.floor((c.validTo.getTime() - now) / DAY_MS),
    ...(c.renewedBySource ? { renewedBySource: true as const } : {}),
  };
}

function describe(d: UpstreamCertificateDetail, expired: boolean): string {
  const what = `upstream "${d.upstream}" ${d.kind === 'client' ? 'client certificate' : 'CA'} ${d.file}`;
  return expired ? `${what} expired at ${d.until}` : `${what} expires in ${d.daysLeft} day(s), at ${d.until}`;
}

export type { UpstreamCertificateValidity } from './upstream.telemetry.js';
