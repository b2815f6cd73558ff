import { watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { assertInteger, assertKnownKeys, assertOneOf } from './options.validation.js';
import { isShieldError, ShieldError } from './shield.error.js';
import {
  loadTlsBundle,
  sameTlsBundle,
  validateTlsFiles,
  type LoadedTlsBundle,
  type TlsFiles,
  type TlsUsage,
} from './certificate.loader.js';

/** Options of {@link TlsBundleWatcher}. */
export interface TlsBundleWatcherOptions {
  /** Checked on every load, as in {@link loadTlsBundle}. */
  usage?: TlsUsage;
  /** Quiet time after the last file event before reloading; default 200 ms. */
  debounceMs?: number;
  /** Called with each new, valid bundle (never with an identical one). */
  onReload: (bundle: LoadedTlsBundle) => void;
  /** Called when a replacement is refused; the previous bundle stays in use. */
  onError: (err: ShieldError) => void;
}

const MAX_DEBOUNCE_MS = 60_000;

/**
 * Watches a certificate bundle on disk and hands over each new valid version, for rotation
 * without a restart. It watches the *directories* of the files: cert-manager, Kubernetes secret
 * volumes (`..data` symlink swap) and editors replace files by rename, which a watch on the file's
 * inode never sees. Events are debounced, then the whole bundle is loaded and checked; a broken
 * replacement is refused (`onError`) and the previous bundle kept; an identical one is ignored.
 * The watchers and timer are unref'd: they never keep the process alive.
 *
 * @example
 * const watcher = new TlsBundleWatcher(files, {
 *   usage: 'server',
 *   onReload: (b) => server.setSecureContext({ cert: b.cert, key: b.key }),
 *   onError: (e) => logger.warn(e.message),
 * });
 * const bundle = watcher.start();
 * process.on('SIGHUP', () => watcher.reload());
 */
export class TlsBundleWatcher {
  private readonly files: Readonly<TlsFiles>;
  private readonly usage: TlsUsage | undefined;
  private readonly debounceMs: number;
  private readonly onReload: (bundle: LoadedTlsBundle) => void;
  private readonly onError: (err: ShieldError) => void;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private bundle: LoadedTlsBundle | undefined;
  private closed = false;

  constructor(files: TlsFiles, options: TlsBundleWatcherOptions) {
    assertKnownKeys('options', options, ['usage', 'debounceMs', 'onReload', 'onError']);
    if (options.usage !== undefined)
      assertOneOf('options.usage', options.usage, ['server', 'client'] as const);
    const debounceMs = options.debounceMs ?? 200;
    assertInteger('options.debounceMs', debounceMs, 0, MAX_DEBOUNCE_MS);
    if (typeof options.onReload !== 'function') throw new TypeError('"options.onReload" must be a function');
    if (typeof options.onError !== 'function') throw new TypeError('"options.onError" must be a function');
    this.files = validateTlsFiles(files);
    this.usage = options.usage;
    this.debounceMs = debounceMs;
    this.onReload = options.onReload;
    this.onError = options.onError;
  }

  /** The bundle in use. Throws before {@link start}. */
  get current(): LoadedTlsBundle {
    if (this.bundle === undefined) throw new Error('TlsBundleWatcher.start() has not been called');
    return this.bundle;
  }

  /**
   * Load (or adopt `initial`) and start watching. Throws the `ShieldError` of an invalid bundle:
   * at start-up there is no previous bundle to fall back on, so the app must not start.
   */
  start(initial?: LoadedTlsBundle): LoadedTlsBundle {
    if (this.closed) throw new Error('TlsBundleWatcher is closed');
    if (this.bundle !== undefined) throw new Error('TlsBundleWatcher.start() was already called');
    this.bundle = initial ?? this.load();
    const dirs = new Set(Object.values(this.files).map((p: string) => dirname(resolve(p))));
    try {
      for (const dir of dirs) {
        const watcher = watch(dir, { persistent: false }, () => this.schedule());
        watcher.on('error', (err) =>
          this.report(
            new ShieldError('ERR_CERT_FILE_UNREADABLE', {
              message: `watching ${dir} for certificate changes failed; rotation there needs reload()`,
              cause: err,
            }),
          ),
        );
        this.watchers.push(watcher);
      }
    } catch (err) {
      this.close();
      throw new ShieldError('ERR_CERT_FILE_UNREADABLE', {
        message: `cannot watch the certificate directories ${[...dirs].join(', ')}`,
        cause: err,
      });
    }
    return this.bundle;
  }

  /**
   * Load and check the bundle now (for SIGHUP or an admin call). Returns the bundle in use after
   * the call: the new one, or the current one when nothing changed; undefined when the files on
   * disk were refused (reported through `onError`; the previous bundle stays in use).
   */
  reload(): LoadedTlsBundle | undefined {
    if (this.closed) return undefined;
    let next: LoadedTlsBundle;
    try {
      next = this.load();
    } catch (err) {
      this.report(
        isShieldError(err)
          ? err
          : new ShieldError('ERR_CERT_INVALID', {
              message: 'certificate bundle could not be loaded',
              cause: err,
            }),
      );
      return undefined;
    }
    const previous = this.bundle;
    if (previous !== undefined && sameTlsBundle(previous, next)) return previous;
    try {
      this.onReload(next);
    } catch (err) {
      // Valid on disk but refused where it is used (e.g. by setSecureContext): the previous
      // bundle stays the current one, so the same files are tried again on the next change.
      this.report(
        isShieldError(err)
          ? err
          : new ShieldError('ERR_CERT_INVALID', {
              message: 'certificate bundle could not be applied',
              cause: err,
            }),
      );
      return undefined;
    }
    this.bundle = next;
    return next;
  }

  /** Stop watching. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  private load(): LoadedTlsBundle {
    return loadTlsBundle(this.files, this.usage !== undefined ? { usage: this.usage } : {});
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.reload();
      } catch (err) {
        // A throwing onReload must not become an uncaught exception in a timer.
        this.report(
          new ShieldError('ERR_INTERNAL', { message: 'TlsBundleWatcher onReload failed', cause: err }),
        );
      }
    }, this.debounceMs);
    this.timer.unref();
  }

  private report(err: ShieldError): void {
    try {
      this.onError(err);
    } catch {
      // onError is the last resort; a failure there has nowhere safer to go.
    }
  }
}
