/**
 * `@inference-shield/https/health`: health indicators for `@nestjs/terminus` (an optional peer,
 * loaded only by this entry): the drain state of the HTTPS app, and the expiry of the certificates
 * it serves and trusts and of the CRLs it checks client certificates against.
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
  /**
   * A CRL this close to its `nextUpdate`, in hours, is reported as a `warning` while the indicator
   * stays up; default 24 (0 to 8760). CRLs live days, not months: a weekly CRL would always be
   * within `warnDays`. Past its `nextUpdate`: down.
   */
  readonly crlWarnHours?: number;
}

/** One dated item of the TLS material, as the certificate indicator reports it. */
export interface CertificateValidityDetail {
  /**
   * `server`, `clientCa` (each CA certificate trusted for client certificates), or `crl` (each
   * CRL in use, `mtls.crl`).
   */
  readonly kind: 'server' | 'clientCa' | 'crl';
  /** Subject of the certificate: public names only; for a CRL, the base name of its file. */
  readonly name: string;
  /** For a CRL: SHA-256 of its DER (lowercase hex), as in the `shield.certificate.expiry` metric. */
  readonly fingerprint?: string;
  /** ISO 8601 end: `notAfter`, or a CRL's `nextUpdate`. */
  readonly until: string;
  /** Whole days left (negative once past). */
  readonly daysLeft: number;
}

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

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
   * The server certificate, the client CAs and the CRLs in use: up with a `warning` when a
   * certificate ends within `warnDays` or a CRL reaches its `nextUpdate` within `crlWarnHours`;
   * down when one has ended. A CRL past its `nextUpdate` is down because OpenSSL then refuses
   * every client certificate of its CA (fail closed, as at load time, where such a CRL is
   * refused). Details name subjects, CRL file names and dates, nothing secret.
   */
  certificates<const Key extends string = 'certificates'>(
    key: Key = 'certificates' as Key,
    options: CertificateHealthOptions = {},
  ): HealthIndicatorResult<Key> {
    assertKnownKeys('certificates options', options, ['warnDays', 'crlWarnHours']);
    const warnDays: unknown = options.warnDays ?? 14;
    assertInteger('certificates options.warnDays', warnDays, 0, 365);
    const crlWarnHours: unknown = options.crlWarnHours ?? 24;
    assertInteger('certificates options.crlWarnHours', crlWarnHours, 0, 8760);
    const session = this.indicators.check(key);
    const validity = httpsTlsValidityOf(this.server());
    if (validity === undefined) return session.down({ message: 'no HTTPS app created by createHttpsApp' });
    const health = certificateHealth(validity, Date.now(), warnDays, crlWarnHours);
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

/**
 * Pure: the health of TLS material at `now` (epoch ms), with `warnDays` of warning for
 * certificates and `crlWarnHours` for CRLs (default 24).
 */
export function certificateHealth(
  validity: TlsValidity,
  now: number,
  warnDays: number,
  crlWarnHours = 24,
): CertificateHealth {
  const items = [
    item('server', validity.server.subject, validity.server.validTo, now),
    ...validity.clientCas.map((ca) => item('clientCa', ca.subject, ca.validTo, now)),
    ...(validity.crls ?? []).map((crl) => item('crl', crl.file, crl.nextUpdate, now, crl.fingerprint)),
  ].sort((a, b) => Date.parse(a.until) - Date.parse(b.until));
  const expired = items.filter((d) => Date.parse(d.until) <= now);
  if (expired.length > 0) {
    return { up: false, details: { items, expired: expired.map((d) => describe(d, true, now)).join('; ') } };
  }
  const soon = items.filter(
    (d) => Date.parse(d.until) - now < (d.kind === 'crl' ? crlWarnHours * HOUR_MS : warnDays * DAY_MS),
  );
  if (soon.length > 0) {
    return { up: true, details: { items, warning: soon.map((d) => describe(d, false, now)).join('; ') } };
  }
  return { up: true, details: { items } };
}

function describe(d: CertificateValidityDetail, expired: boolean, now: number): string {
  if (d.kind === 'crl') {
    const what = `CRL ${d.name} (sha256 ${d.fingerprint?.slice(0, 16) ?? '?'})`;
    return expired
      ? `${what} passed its nextUpdate at ${d.until}: every client certificate of its CA is refused`
      : `${what} reaches its nextUpdate in ${Math.floor((Date.parse(d.until) - now) / HOUR_MS)} hour(s), at ${d.until}`;
  }
  const what = `${d.kind === 'server' ? 'server certificate' : 'client CA'} ${d.name}`;
  return expired ? `${what} expired at ${d.until}` : `${what} expires in ${d.daysLeft} day(s), at ${d.until}`;
}

function item(
  kind: CertificateValidityDetail['kind'],
  name: string,
  until: Date,
  now: number,
  fingerprint?: string,
): CertificateValidityDetail {
  const daysLeft = Math.floor((until.getTime() - now) / DAY_MS);
  return fingerprint === undefined
    ? { kind, name, until: until.toISOString(), daysLeft }
    : { kind, name, fingerprint, until: until.toISOString(), daysLeft };
}

export type { CertificateValidity, CrlValidity, TlsValidity } from './tls-validity.js';
