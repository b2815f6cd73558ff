import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { deadlineSignal } from './deadline-signal.js';

describe('deadlineSignal', () => {
  it('aborts with a TimeoutError once the deadline has passed', async () => {
    const { signal } = deadlineSignal(10);
    expect(signal.aborted).toBe(false);
    await sleep(40);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as DOMException).name).toBe('TimeoutError');
  });

  it('aborts with the parent reason as soon as the parent aborts', () => {
    const parent = new AbortController();
    const { signal } = deadlineSignal(60_000, parent.signal);
    const reason = new Error('closing');
    parent.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });

  it('is aborted from the start under an aborted parent', () => {
    const parent = new AbortController();
    parent.abort(new Error('gone'));
    expect(deadlineSignal(60_000, parent.signal).signal.aborted).toBe(true);
  });

  it('never aborts once cleared', async () => {
    const parent = new AbortController();
    const d = deadlineSignal(10, parent.signal);
    d.clear();
    await sleep(40);
    parent.abort();
    expect(d.signal.aborted).toBe(false);
  });

  // The failure it replaces: AbortSignal.any() holds its sources weakly.
  it('fires after a garbage collection with no other reference to it', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    const { signal } = deadlineSignal(30);
    gc?.();
    await sleep(80);
    expect(signal.aborted).toBe(true);
  });
});
