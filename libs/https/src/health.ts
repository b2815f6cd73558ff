/**
 * `@inference-shield/https/health`: health indicators for `@nestjs/terminus` (an optional peer,
 * loaded only by this entry): the drain state of the HTTPS app, and the expiry of the certificates
 * it serves and trusts.
 *
 * @packageDocumentation
 */
import { Injectable } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { assertInteger, assertKnownKeys } from '@inference-shield/core/internal';
import { httpsTlsValidityOf, isHttpsDraining } from './https.bootstrap.js';
import type { TlsValidity } from './tls-validity.js';

/** Options of {@link HttpsHealthIndicator.certificates}. */
export interface CertificateHealthOptions {
  /**
   * A certificate this close to its end, in days, is reported as a
   * `warning` while the indicator stays up; default 14 (0 to 365). Past its end: down.
   */
  readonly warnDays?: number;
}

/** One dated item of the TLS material, as the certificate indicator reports it. */
export interface CertificateValidityDetail {
  /** `server`, or `clientCa` (each CA certificate trusted for client certificates). */
  readonly kind: 'server' | 'clientCa';
  /** Subject of the certificate: public names only. */
  readonly name: string;
  /** ISO 8601 end: `notAfter`. */
  readonly until: string;
  /** Whole days left (negative once past). */
  readonly daysLeft: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Terminus indicators of the HTTPS app started by `createHttpsApp`. Provide it beside
 * `TerminusModule`, then use it in a `@HealthCheck()` route.
 *
 * @example
 * \@Module({ imports: [TerminusModule], providers: [HttpsHealthIndicator], controllers: [HealthController] })
 * // in the controller:
 * ready() { return this.health.check([() => this.https.draining(), () => this.https.certificates('tls', { warnDays: 14 })]); }
 */
@Injectable()
export class HttpsHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /**
   * Down from the moment the app's `close()` starts (SIGTERM), while it still serves during
   * `timeouts.drainDelayMs`: a readiness check with it turns 503 at once.
   */
  draining<const Key extends string = 'https'>(key: Key = 'https' as Key): HealthIndicatorResult<Key> {
    const session = this.indicators.check(key);
    return isHttpsDraining(this.server())
      ? session.down({ draining: true })
      : session.up({ draining: false });
  }

  /**
   * The server certificate and the client CAs in use: up with a `warning` when one ends within
   * `warnDays`, down when one has ended. Details name subjects and dates, nothing secret.
   */
  certificates<const Key extends string = 'certificates'>(
    key: Key = 'certificates' as Key,
    options: CertificateHealthOptions = {},
  ): HealthIndicatorResult<Key> {
    assertKnownKeys('certificates options', options, ['warnDays']);
    const warnDays: unknown = options.warnDays ?? 14;
    assertInteger('certificates options.warnDays', warnDays, 0, 365);
    const session = this.indicators.check(key);
    const validity = httpsTlsValidityOf(this.server());
    if (validity === undefined) return session.down({ message: 'no HTTPS app created by createHttpsApp' });
    const health = certificateHealth(validity, Date.now(), warnDays);
    return health.up ? session.up(health.details) : session.down(health.details);
  }

  private server(): unknown {
    return this.adapterHost.httpAdapter?.getHttpServer();
  }
}

/** The verdict of {@link HttpsHealthIndicator.certificates}: up or down, and what it reports. */
export interface CertificateHealth {
  readonly up: boolean;
  readonly details: {
    /** Every dated item, soonest end first. */
    readonly items: readonly CertificateValidityDetail[];
    /** Items within `warnDays` of their end (the indicator stays up). */
    readonly warning?: string;
    /** Items past their end (the indicator is down). */
    readonly expired?: string;
  };
}

/** Pure: the health of TLS material at `now` (epoch ms), with `warnDays` of warning. */
export function certificateHealth(validity: TlsValidity, now: number, warnDays: number): CertificateHealth {
  const items = [
    item('server', validity.server.subject, validity.server.validTo, now),
    ...validity.clientCas.map((ca) => item('clientCa', ca.subject, ca.validTo, now)),
  ].sort((a, b) => Date.parse(a.until) - Date.parse(b.until));
  const expired = items.filter((d) => Date.parse(d.until) <= now);
  if (expired.length > 0) {
    return { up: false, details: { items, expired: expired.map((d) => describe(d, true)).join('; ') } };
  }
  const soon = items.filter((d) => Date.parse(d.until) - now < warnDays * DAY_MS);
  if (soon.length > 0) {
    return { up: true, details: { items, warning: soon.map((d) => describe(d, false)).join('; ') } };
  }
  return { up: true, details: { items } };
}

function describe(d: CertificateValidityDetail, expired: boolean): string {
  const what = `${d.kind === 'server' ? 'server certificate' : 'client CA'} ${d.name}`;
  return expired ? `${what} expired at ${d.until}` : `${what} expires in ${d.daysLeft} day(s), at ${d.until}`;
}

function item(
  kind: CertificateValidityDetail['kind'],
  name: string,
  until: Date,
  now: number,
): CertificateValidityDetail {
  return { kind, name, until: until.toISOString(), daysLeft: Math.floor((until.getTime() - now) / DAY_MS) };
}

export type { CertificateValidity, TlsValidity } from './tls-validity.js';
