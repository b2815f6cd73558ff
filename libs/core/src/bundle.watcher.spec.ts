import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isShieldError,
  ShieldError,
  TlsBundleWatcher,
  type LoadedTlsBundle,
  type TlsFiles,
} from '@inference-shield/core/internal';
import { createTestPki, type TestPki, type TestPkiPair } from '@inference-shield/dev-pki';

let root: string;
let pki: TestPki;
let counter = 0;
const open: TlsBundleWatcher[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'shield-watcher-'));
  pki = await createTestPki(join(root, 'pki'));
});
afterEach(() => {
  for (const w of open.splice(0)) w.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh folder holding `pair` as cert.pem / key.pem. */
function liveDir(pair: TestPkiPair): TlsFiles {
  const dir = join(root, `live-${++counter}`);
  mkdirSync(dir);
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  copyFileSync(pair.cert, files.cert);
  copyFileSync(pair.key, files.key);
  return files;
}

/** Replace a file the way cert-manager and editors do: write a temp file, rename it over. */
function replaceAtomically(target: string, content: string): void {
  const tmp = `${target}.${++counter}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, target);
}

/** A watcher whose callbacks are recorded and can be awaited (bounded by the test timeout). */
function watched(files: TlsFiles) {
  const reloads: LoadedTlsBundle[] = [];
  const errors: ShieldError[] = [];
  let wake: (() => void) | undefined;
  const watcher = new TlsBundleWatcher(files, {
    usage: 'server',
    debounceMs: 50,
    onReload: (b) => {
      reloads.push(b);
      wake?.();
    },
    onError: (e) => {
      errors.push(e);
      wake?.();
    },
  });
  open.push(watcher);
  const until = async (done: () => boolean): Promise<void> => {
    while (!done()) await new Promise<void>((resolve) => (wake = resolve));
  };
  return { watcher, reloads, errors, until };
}

describe('TlsBundleWatcher', () => {
  it('starts with the bundle on disk', () => {
    const { watcher } = watched(liveDir(pki.server));
    const bundle = watcher.start();
    expect(bundle.fingerprint256).toBe(pki.server.fingerprint256);
    expect(watcher.current).toBe(bundle);
  });

  it('refuses to start on a broken bundle: there is nothing to fall back on', () => {
    const { watcher } = watched(liveDir(pki.expired.server));
    expect(() => watcher.start()).toThrow(ShieldError);
    try {
      watcher.start();
    } catch (err) {
      expect(isShieldError(err) && err.code).toBe('ERR_CERT_EXPIRED');
    }
  });

  it('picks up a certificate and key replaced by rename', async () => {
    const files = liveDir(pki.server);
    const { watcher, reloads, errors, until } = watched(files);
    watcher.start();
    const next = pki.wrongHost.server;
    replaceAtomically(files.key, next.keyPem);
    replaceAtomically(files.cert, next.certPem);
    await until(() => reloads.length > 0);
    expect(reloads).toHaveLength(1);
    expect(reloads[0]?.fingerprint256).toBe(next.fingerprint256);
    expect(watcher.current.fingerprint256).toBe(next.fingerprint256);
    expect(errors).toEqual([]);
  });

  it('refuses a broken replacement, keeps the old bundle, and takes the repaired one', async () => {
    const files = liveDir(pki.server);
    const { watcher, reloads, errors, until } = watched(files);
    const initial = watcher.start();
    replaceAtomically(files.cert, pki.wrongHost.server.certPem); // key left as is: mismatch
    await until(() => errors.length > 0);
    expect(errors[0]?.code).toBe('ERR_CERT_KEY_MISMATCH');
    expect(errors[0]?.message).toContain(files.cert);
    expect(watcher.current).toBe(initial);
    expect(reloads).toEqual([]);

    replaceAtomically(files.key, pki.wrongHost.server.keyPem);
    await until(() => reloads.length > 0);
    expect(watcher.current.fingerprint256).toBe(pki.wrongHost.server.fingerprint256);
  });

  it('refuses a replacement that breaks the usage (clientAuth-only certificate for a server)', async () => {
    const files = liveDir(pki.server);
    const { watcher, errors, until } = watched(files);
    const initial = watcher.start();
    replaceAtomically(files.key, pki.wrongEku.server.keyPem);
    replaceAtomically(files.cert, pki.wrongEku.server.certPem);
    await until(() => errors.some((e) => e.code === 'ERR_CERT_USAGE'));
    expect(watcher.current).toBe(initial);
  });

  it('follows a Kubernetes-style secret volume (..data symlink swapped)', async () => {
    const dir = join(root, `k8s-${++counter}`);
    mkdirSync(join(dir, 'v1'), { recursive: true });
    mkdirSync(join(dir, 'v2'));
    copyFileSync(pki.server.cert, join(dir, 'v1', 'tls.crt'));
    copyFileSync(pki.server.key, join(dir, 'v1', 'tls.key'));
    copyFileSync(pki.wrongHost.server.cert, join(dir, 'v2', 'tls.crt'));
    copyFileSync(pki.wrongHost.server.key, join(dir, 'v2', 'tls.key'));
    symlinkSync('v1', join(dir, '..data'));
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));
    const { watcher, reloads, until } = watched({ cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') });
    expect(watcher.start().fingerprint256).toBe(pki.server.fingerprint256);
    symlinkSync('v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until(() => reloads.length > 0);
    expect(watcher.current.fingerprint256).toBe(pki.wrongHost.server.fingerprint256);
  });

  it('reload() on demand: new bundle, same bundle when unchanged (not re-announced), undefined when refused', () => {
    const files = liveDir(pki.server);
    const { watcher, reloads, errors } = watched(files);
    const initial = watcher.start();
    expect(watcher.reload()).toBe(initial);
    expect(reloads).toHaveLength(0);

    replaceAtomically(files.key, pki.wrongHost.server.keyPem);
    replaceAtomically(files.cert, pki.wrongHost.server.certPem);
    const next = watcher.reload();
    expect(next?.fingerprint256).toBe(pki.wrongHost.server.fingerprint256);
    expect(reloads).toEqual([next]);
    expect(watcher.reload()).toBe(next); // identical content: no second announcement
    expect(reloads).toHaveLength(1);

    rmSync(files.key);
    expect(watcher.reload()).toBeUndefined();
    expect(errors.map((e) => e.code)).toEqual(['ERR_CERT_FILE_UNREADABLE']);
    expect(watcher.current).toBe(next);
  });

  it('keeps the previous bundle when the new one is refused where it is applied, and retries it', () => {
    const files = liveDir(pki.server);
    const errors: ShieldError[] = [];
    let refuse = true;
    const applied: LoadedTlsBundle[] = [];
    const watcher = new TlsBundleWatcher(files, {
      usage: 'server',
      debounceMs: 0,
      onReload: (b) => {
        if (refuse) throw new Error('setSecureContext said no');
        applied.push(b);
      },
      onError: (e) => errors.push(e),
    });
    open.push(watcher);
    const initial = watcher.start();
    replaceAtomically(files.key, pki.wrongHost.server.keyPem);
    replaceAtomically(files.cert, pki.wrongHost.server.certPem);
    expect(watcher.reload()).toBeUndefined();
    expect(watcher.reload()).toBeUndefined(); // not taken for current: tried again, refused again
    expect(watcher.current).toBe(initial);
    expect(errors.map((e) => e.code)).toEqual(['ERR_CERT_INVALID', 'ERR_CERT_INVALID']);
    expect(errors[0]?.message).not.toContain('setSecureContext said no');
    refuse = false;
    const next = watcher.reload();
    expect(next?.fingerprint256).toBe(pki.wrongHost.server.fingerprint256);
    expect(applied).toEqual([next]);
    expect(watcher.current).toBe(next);
  });

  it('announces a changed CRL even when the leaf is the same', async () => {
    const crl = join(root, `crl-${++counter}.pem`);
    copyFileSync(pki.ca.crl, crl);
    const files: TlsFiles = { ...liveDir(pki.server), ca: pki.ca.cert, crl };
    const { watcher, reloads } = watched(files);
    const initial = watcher.start();
    replaceAtomically(crl, await pki.ca.authority.crlPem());
    const next = watcher.reload();
    expect(next).not.toBe(initial);
    expect(next?.fingerprint256).toBe(initial.fingerprint256);
    expect(reloads).toEqual([next]);
  });

  it('adopts an initial bundle, and does nothing after close()', () => {
    const files = liveDir(pki.server);
    const first = watched(files);
    const bundle = first.watcher.start();
    const { watcher, reloads } = watched(files);
    expect(watcher.start(bundle)).toBe(bundle);
    watcher.close();
    watcher.close();
    replaceAtomically(files.key, pki.wrongHost.server.keyPem);
    replaceAtomically(files.cert, pki.wrongHost.server.certPem);
    expect(watcher.reload()).toBeUndefined();
    expect(reloads).toEqual([]);
  });

  it.each([
    [
      'an unknown option',
      { onReload: () => {}, onError: () => {}, enabled: false },
      /unknown option "enabled"/,
    ],
    [
      'a negative debounce',
      { onReload: () => {}, onError: () => {}, debounceMs: -1 },
      /"options\.debounceMs"/,
    ],
    ['a missing onError', { onReload: () => {} }, /"options\.onError"/],
    ['a bad usage', { onReload: () => {}, onError: () => {}, usage: 'any' }, /"options\.usage"/],
  ])('throws a TypeError for %s', (_label, options, message) => {
    expect(() => new TlsBundleWatcher({ cert: 'a', key: 'b' }, options as never)).toThrow(message);
  });
});
