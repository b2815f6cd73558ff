/** A signal with a deadline, and the way to stop its timer once the work is done. */
export interface DeadlineSignal {
  readonly signal: AbortSignal;
  /** Stops the timer and lets go of the parent signal; call it when the work has settled. */
  clear(): void;
}

/**
 * A signal that aborts after `ms` (reason: a `TimeoutError` DOMException, as `AbortSignal.timeout`
 * gives) or as soon as `parent` aborts (with its reason).
 *
 * Not `AbortSignal.any([AbortSignal.timeout(ms), parent])`: the composite holds its sources weakly,
 * so when nothing else references the timeout signal it can be garbage-collected before it fires,
 * and the work it bounds then never times out (seen on CI as a token request that hung a test for
 * 30 s under a coverage run's memory pressure). Here the timer holds the controller strongly.
 */
export function deadlineSignal(ms: number, parent?: AbortSignal): DeadlineSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, ms);
  // Never the reason a process stays up: the work itself (a socket) holds the event loop.
  timer.unref();
  const onAbort = (): void => {
    clearTimeout(timer);
    controller.abort(parent?.reason);
  };
  if (parent?.aborted) onAbort();
  else parent?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    clear(): void {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onAbort);
    },
  };
}
