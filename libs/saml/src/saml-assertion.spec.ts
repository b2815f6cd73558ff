import { describe, expect, it } from 'vitest';
import { isShieldError } from '@inference-shield/core/internal';
import { time } from './saml-assertion.js';

describe('time (SAML core §1.3.3: xs:dateTime in UTC)', () => {
  it.each([
    ['2030-01-02T03:04:05Z', Date.UTC(2030, 0, 2, 3, 4, 5)],
    ['2030-01-02T03:04:05.123Z', Date.UTC(2030, 0, 2, 3, 4, 5, 123)],
    ['2030-01-02T03:04:05.1234567Z', Date.UTC(2030, 0, 2, 3, 4, 5, 123)],
  ])('reads %s', (value, ms) => {
    expect(time(value, 'x', true)).toBe(ms);
  });

  it.each(['2030-01-02T03:04:05+01:00', '2030-01-02T03:04:05', '2030-13-02T03:04:05Z', 'tomorrow', ''])(
    'refuses %j',
    (value) => {
      try {
        time(value, 'x', true);
        expect.unreachable();
      } catch (err) {
        expect(isShieldError(err) && err.code).toBe('ERR_SAML_CONDITIONS_INVALID');
      }
    },
  );

  it('refuses a missing required time, allows a missing optional one', () => {
    expect(() => time(null, 'x', true)).toThrow();
    expect(time(null, 'x', false)).toBeUndefined();
  });
});
