/**
 * `@inference-shield/upstream/health`: a health indicator for `@nestjs/terminus` (an optional
 * peer, loaded only by this entry): can each upstream be reached, our client certificate accepted.
 *
 * @packageDocumentation
 */
import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  isShieldError,
} from '@inference-shield/core/internal';
import { InjectUpstreamRegistry } from './inject.decorators.js';
import type { UpstreamRegistry } from './upstream.registry.js';

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
  /** Why it failed: the catalogue code (`ERR_UPSTREAM_TLS`, `ERR_UPSTREAM_UNREACHABLE`, …). */
  readonly code?: string;
  /** ISO time of the probe. */
  readonly checkedAt: string;
}

/**
 * Terminus indicator of `UpstreamModule`'s upstreams. A probe is one `HEAD` of the base URL through the
 * upstream's own pool (the same TLS policy, CA, pins and client certificate as real calls), bounded
 * by `timeoutMs`; its result is reused for `cacheMs`, and concurrent health calls share one probe,
 * so a burst of probes never becomes a burst of upstream requests. An unreachable upstream, or one
 * refusing our certificate, is reported in the details; it makes the indicator down only with
 * `required: true` (an upstream outage is rarely a reason to pull this replica from the balancer).
 *
 * @example
 * ready() { return this.health.check([() => this.upstreams.reachable('llm')]); }
 */
@Injectable()
export class UpstreamHealthIndicator {
  private readonly probes = new Map<string, { at: number; result: Promise<UpstreamProbe> }>();

  constructor(
    private readonly indicators: HealthIndicatorService,
    @InjectUpstreamRegistry() private readonly registry: UpstreamRegistry,
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
    const client = this.registry.client(name);
    const now = Date.now();
    let entry = this.probes.get(name);
    if (entry === undefined || now - entry.at >= cacheMs) {
      entry = { at: now, result: probe(client, timeoutMs) };
      this.probes.set(name, entry);
    }
    const result = await entry.result;
    const session = this.indicators.check(key);
    return result.reachable || !required ? session.up({ ...result }) : session.down({ ...result });
  }
}

async function probe(
  client: ReturnType<UpstreamRegistry['client']>,
  timeoutMs: number,
): Promise<UpstreamProbe> {
  const checkedAt = new Date().toISOString();
  try {
    // The base URL's own path: always inside what the client may call.
    const path = new URL(client.baseUrl).pathname;
    const res = await client.request({ method: 'HEAD', path, signal: AbortSignal.timeout(timeoutMs) });
    res.body.resume();
    return { reachable: true, httpStatus: res.statusCode, checkedAt };
  } catch (err) {
    return { reachable: false, code: isShieldError(err) ? err.code : 'ERR_UPSTREAM_UNREACHABLE', checkedAt };
  }
}
