import type { ShieldErrorCode } from '@inference-shield/core/internal';

/** A snapshot of one upstream's counters since start-up. */
export interface UpstreamStats {
  readonly upstream: string;
  /** Requests dispatched (each `fetch`/`request` call that passed the origin check). */
  readonly requests: number;
  /** Requests refused before leaving (origin check). */
  readonly refused: number;
  /** Responses whose headers arrived. */
  readonly responses: number;
  /** Failures by code (refusals, TLS, timeouts, cancellations). */
  readonly errors: Readonly<Partial<Record<ShieldErrorCode, number>>>;
  /** New connections that completed a TLS handshake. */
  readonly handshakes: number;
  /** Of those, handshakes that resumed an earlier TLS session (abbreviated). */
  readonly resumedHandshakes: number;
  /** Requests that went over an already open connection: `requests - handshakes`, at least 0. */
  readonly reusedConnections: number;
  /** Client certificate reloads applied (rotation). */
  readonly certificateReloads: number;
}

/** The mutable counters behind {@link UpstreamStats}; plain integers, nothing per request but `++`. */
export class UpstreamCounters {
  requests = 0;
  refused = 0;
  responses = 0;
  handshakes = 0;
  resumedHandshakes = 0;
  certificateReloads = 0;
  private readonly errors = new Map<ShieldErrorCode, number>();

  constructor(private readonly upstream: string) {}

  error(code: ShieldErrorCode): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  snapshot(): UpstreamStats {
    return Object.freeze({
      upstream: this.upstream,
      requests: this.requests,
      refused: this.refused,
      responses: this.responses,
      errors: Object.freeze(Object.fromEntries(this.errors)),
      handshakes: this.handshakes,
      resumedHandshakes: this.resumedHandshakes,
      reusedConnections: Math.max(0, this.requests - this.handshakes),
      certificateReloads: this.certificateReloads,
    });
  }
}
