import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';

/** Private keys: owner read/write only. */
export const KEY_MODE = 0o600;
/** Certificates and CRLs are public. */
export const PUBLIC_MODE = 0o644;
/** PKI directories: owner only (they hold keys). */
export const DIR_MODE = 0o700;

/** Create `dir` (and parents) and force its mode: an existing directory keeps its old mode otherwise. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  chmodSync(dir, DIR_MODE);
}

/**
 * Write a file atomically: a temp file in the same directory, fsync, rename over the target. A
 * reader (a watcher, a starting server) sees the old file or the new one, never half of one.
 * The temp file is created with `mode` (O_EXCL, so it is new) and chmod'ed after, since the umask
 * may have narrowed it and rename keeps the temp file's mode.
 */
export function writeFileAtomic(path: string, data: string | Buffer, mode: number): void {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < buf.length) offset += writeSync(fd, buf, offset, buf.length - offset);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 20_000;
const LOCK_POLL_MS = 25;

/**
 * Run `fn` holding an exclusive lock file in `dir`, so two processes initialising the same PKI
 * folder at once (an app and its IdP started together) cannot create two different CAs.
 * A lock older than 30 s is considered left behind by a crashed process and taken over.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, '.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', KEY_MODE));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const mtime = statSync(lock, { throwIfNoEntry: false })?.mtimeMs;
      if (mtime === undefined) continue; // released between our open and stat: try again at once
      if (Date.now() - mtime > LOCK_STALE_MS) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for the PKI lock ${lock}`, { cause: err });
      await sleep(LOCK_POLL_MS);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
