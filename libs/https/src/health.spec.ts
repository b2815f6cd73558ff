import 'reflect-metadata';
import { HttpAdapterHost } from '@nestjs/core';
import { HealthIndicatorService } from '@nestjs/terminus';
import { describe, expect, it } from 'vitest';
import { certificateHealth, HttpsHealthIndicator } from './health.js';
import type { TlsValidity } from './tls-validity.js';

const NOW = Date.parse('2026-12-01T00:00:00Z');
const DAY = 24 * 60 * 60 * 1000;

function validity(serverDays: number, caDays: number[] = []): TlsValidity {
  return {
    server: { subject: 'CN=localhost', validTo: new Date(NOW + serverDays * DAY) },
    clientCas: caDays.map((d, i) => ({ subject: `CN=CA ${i}`, validTo: new Date(NOW + d * DAY) })),
  };
}

describe('certificateHealth', () => {
  it.each<[string, TlsValidity, boolean, 'warning' | 'expired' | undefined, RegExp | undefined]>([
    ['all far from their end', validity(90, [3650]), true, undefined, undefined],
    [
      'server within warnDays',
      validity(10, [3650]),
      true,
      'warning',
      /server certificate CN=localhost expires in 10 day/,
    ],
    [
      'a client CA within warnDays',
      validity(90, [3650, 3]),
      true,
      'warning',
      /client CA CN=CA 1 expires in 3 day/,
    ],
    ['server expired', validity(-1, [3650]), false, 'expired', /server certificate CN=localhost expired at/],
    ['a client CA expired, server fine', validity(90, [-30]), false, 'expired', /client CA CN=CA 0 expired/],
    ['ending exactly now', validity(0), false, 'expired', /expired at 2026-12-01T00:00:00.000Z/],
  ])('%s', (_name, v, up, field, text) => {
    const health = certificateHealth(v, NOW, 14);
    expect(health.up).toBe(up);
    if (field === undefined) {
      expect(health.details.warning).toBeUndefined();
      expect(health.details.expired).toBeUndefined();
    } else {
      expect(health.details[field]).toMatch(text ?? /./);
    }
    expect(health.details.items).toHaveLength(1 + v.clientCas.length);
  });

  it('lists items soonest first, with whole days left', () => {
    const { items } = certificateHealth(validity(90, [3650, 20]), NOW, 14).details;
    expect(items.map((i) => [i.kind, i.daysLeft])).toEqual([
      ['clientCa', 20],
      ['server', 90],
      ['clientCa', 3650],
    ]);
  });

  it('warnDays 0 never warns', () => {
    expect(certificateHealth(validity(1), NOW, 0).details.warning).toBeUndefined();
  });
});

const HOUR = 60 * 60 * 1000;

/** The server 90 days out, a client CA ten years out, and CRLs `hours` from their nextUpdate. */
function withCrls(...hours: number[]): TlsValidity {
  return {
    ...validity(90, [3650]),
    crls: hours.map((h, i) => ({
      file: 'ca.crl.pem',
      fingerprint: `${i}`.repeat(64),
      nextUpdate: new Date(NOW + h * HOUR),
    })),
  };
}

describe('certificateHealth: CRLs (nextUpdate)', () => {
  it.each<
    [string, TlsValidity, number | undefined, boolean, 'warning' | 'expired' | undefined, RegExp | undefined]
  >([
    ['a weekly CRL, default window', withCrls(7 * 24), undefined, true, undefined, undefined],
    [
      'within the default 24 hours',
      withCrls(7 * 24, 5),
      undefined,
      true,
      'warning',
      /^CRL ca\.crl\.pem \(sha256 1{16}\) reaches its nextUpdate in 5 hour\(s\), at 2026-12-01T05:00:00\.000Z$/,
    ],
    ['within crlWarnHours 200', withCrls(7 * 24), 200, true, 'warning', /reaches its nextUpdate in 168 hour/],
    ['crlWarnHours 0 never warns', withCrls(1), 0, true, undefined, undefined],
    [
      'past nextUpdate: down',
      withCrls(7 * 24, -1),
      undefined,
      false,
      'expired',
      /^CRL ca\.crl\.pem \(sha256 1{16}\) passed its nextUpdate at 2026-11-30T23:00:00\.000Z: every client certificate of its CA is refused$/,
    ],
    ['reaching nextUpdate exactly now: down', withCrls(0), 0, false, 'expired', /passed its nextUpdate/],
  ])('%s', (_name, v, crlWarnHours, up, field, text) => {
    const health = certificateHealth(v, NOW, 14, crlWarnHours);
    expect(health.up).toBe(up);
    if (field === undefined) {
      expect(health.details.warning).toBeUndefined();
      expect(health.details.expired).toBeUndefined();
    } else {
      expect(health.details[field]).toMatch(text ?? /./);
    }
    expect(health.details.items.filter((i) => i.kind === 'crl')).toHaveLength(v.crls?.length ?? 0);
  });

  it('reports a CRL as an item with its file name, fingerprint and nextUpdate, soonest first', () => {
    const { items } = certificateHealth(withCrls(30), NOW, 14).details;
    expect(items[0]).toEqual({
      kind: 'crl',
      name: 'ca.crl.pem',
      fingerprint: '0'.repeat(64),
      until: '2026-12-02T06:00:00.000Z',
      daysLeft: 1,
    });
  });

  it('the CRL window does not apply to certificates, nor warnDays to CRLs', () => {
    // A CRL 10 days out is not within 14 warnDays' reach; the server 10 days out is.
    const v: TlsValidity = {
      ...withCrls(10 * 24),
      server: { subject: 'CN=localhost', validTo: new Date(NOW + 10 * 24 * HOUR) },
    };
    const warning = certificateHealth(v, NOW, 14, 24).details.warning ?? '';
    expect(warning).toMatch(/^server certificate CN=localhost expires in 10 day/);
    expect(warning).not.toMatch(/CRL/);
  });
});

describe('HttpsHealthIndicator.certificates options', () => {
  it.each([
    [{ warnDays: 366 }, /warnDays/],
    [{ crlWarnHours: -1 }, /crlWarnHours/],
    [{ crlWarnHours: 8761 }, /crlWarnHours/],
    [{ crlWarnHours: 1.5 }, /crlWarnHours/],
    [{ crlWarnDays: 1 }, /crlWarnDays/],
  ])('refuses %j with a TypeError naming it', (options, message) => {
    const health = new HttpsHealthIndicator(new HealthIndicatorService(), new HttpAdapterHost());
    expect(() => health.certificates('c', options as never)).toThrow(TypeError);
    expect(() => health.certificates('c', options as never)).toThrow(message);
  });

  it('without an app from createHttpsApp: down, saying so', () => {
    const health = new HttpsHealthIndicator(new HealthIndicatorService(), new HttpAdapterHost());
    expect(health.certificates('c', { crlWarnHours: 48 })).toEqual({
      c: { status: 'down', message: 'no HTTPS app created by createHttpsApp' },
    });
  });
});
