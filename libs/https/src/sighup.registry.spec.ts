import { describe, expect, it } from 'vitest';
import { onSighupReload } from './sighup.registry.js';

describe('onSighupReload', () => {
  it('installs one process listener for all callbacks and removes it with the last', () => {
    const base = process.listenerCount('SIGHUP');
    const calls: string[] = [];
    const stopA = onSighupReload(() => calls.push('a'));
    const stopB = onSighupReload(() => calls.push('b'));
    expect(process.listenerCount('SIGHUP')).toBe(base + 1);
    process.emit('SIGHUP', 'SIGHUP');
    expect(calls).toEqual(['a', 'b']);
    stopA();
    stopA();
    expect(process.listenerCount('SIGHUP')).toBe(base + 1);
    process.emit('SIGHUP', 'SIGHUP');
    expect(calls).toEqual(['a', 'b', 'b']);
    stopB();
    expect(process.listenerCount('SIGHUP')).toBe(base);
  });

  it('registers the same function twice as two entries', () => {
    let n = 0;
    const cb = (): void => {
      n++;
    };
    const stop1 = onSighupReload(cb);
    const stop2 = onSighupReload(cb);
    process.emit('SIGHUP', 'SIGHUP');
    expect(n).toBe(2);
    stop1();
    stop2();
  });
});
