/**
 * One `SIGHUP` listener per process, shared by every HTTPS app in it (tests start several). Installed
 * when the first app registers and removed with the last, so a closed app leaves no listener behind
 * and the default SIGHUP behaviour comes back.
 */
const callbacks = new Set<() => void>();

function onSighup(): void {
  for (const callback of callbacks) callback();
}

/** Call `callback` on every SIGHUP until the returned function is called. */
export function onSighupReload(callback: () => void): () => void {
  const entry = (): void => callback();
  if (callbacks.size === 0) process.on('SIGHUP', onSighup);
  callbacks.add(entry);
  return () => {
    if (!callbacks.delete(entry)) return;
    if (callbacks.size === 0) process.removeListener('SIGHUP', onSighup);
  };
}
