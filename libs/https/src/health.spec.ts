import { describe, expect, it } from 'vitest';
import { certificateHealth } from './health.js';
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
