import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join, resolve } from 'node:path';
import {
  isShieldError,
  loadTlsBundle,
  parseSpiffeId,
  type LoadedTlsBundle,
  type TlsFiles,
} from '@inference-shield/core/internal';
import { DevCertificateAuthority, type IssuedCertificate } from './dev-certificate-authority.js';
import { ensurePrivateDir, KEY_MODE, PUBLIC_MODE, withDirLock, writeFileAtomic } from './pki-files.js';

/** Where the files of a dev PKI folder live. The names are fixed so every tool can find them. */
export interface DevPkiLayout {
  /** Absolute path of the folder. */
  readonly dir: string;
  /** `ca.pem` */
  readonly caCert: string;
  /** `ca-key.pem` */
  readonly caKey: string;
  /** `localhost.pem`: for localhost, 127.0.0.1 and ::1. */
  readonly serverCert: string;
  /** `localhost-key.pem` */
  readonly serverKey: string;
  /** `ca.crl.pem` */
  readonly crl: string;
  /** `clients/<name>.pem` */
  clientCert(name: string): string;
  /** `clients/<name>-key.pem` */
  clientKey(name: string): string;
}

/** What {@link initDevPki} did with one file. */
export interface DevPkiFileReport {
  readonly path: string;
  /** `created`: was missing; `replaced`: was there but not usable (see `reason`); `kept`: valid. */
  readonly status: 'created' | 'replaced' | 'kept';
  readonly reason?: string;
}

/** The layout, plus what was created, replaced or kept. */
export interface DevPkiInitResult extends DevPkiLayout {
  readonly trustDomain: string;
  /** SPIFFE ID of each client, by name. */
  readonly clients: Readonly<Record<string, string>>;
  readonly report: readonly DevPkiFileReport[];
}

/** Options of {@link initDevPki}. */
export interface DevPkiOptions {
  /** Default `.shield/pki`, resolved from the current directory. */
  dir?: string;
  /** Client certificate names; default `['demo']`, each getting `spiffe://<trustDomain>/<name>`. */
  clients?: string[];
  /** Default `shield.local`. */
  trustDomain?: string;
}

/** The default folder, relative to the current directory. */
export const DEFAULT_PKI_DIR = '.shield/pki';
const DEFAULT_TRUST_DOMAIN = 'shield.local';
/** Material expiring sooner than this is re-issued, so a dev setup never breaks mid-week. */
const RENEW_BEFORE_MS = 7 * 24 * 60 * 60 * 1000;
/** The dev CRL is refreshed by each init; it lasts long enough not to break a paused project. */
const CRL_LIFETIME_MS = 365 * 24 * 60 * 60 * 1000;
// Client names become file names: no separators, no leading dot, no traversal.
const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The file layout of a PKI folder, without touching the disk.
 *
 * @example devPkiLayout('.shield/pki').clientCert('demo') // '/abs/.shield/pki/clients/demo.pem'
 */
export function devPkiLayout(dir: string = DEFAULT_PKI_DIR): DevPkiLayout {
  const abs = resolve(dir);
  const clientPath = (name: string, suffix: string): string => {
    if (typeof name !== 'string' || !CLIENT_NAME.test(name)) {
      throw new TypeError(`client name must match ${CLIENT_NAME}, got ${JSON.stringify(name)}`);
    }
    return join(abs, 'clients', `${name}${suffix}`);
  };
  return Object.freeze({
    dir: abs,
    caCert: join(abs, 'ca.pem'),
    caKey: join(abs, 'ca-key.pem'),
    serverCert: join(abs, 'localhost.pem'),
    serverKey: join(abs, 'localhost-key.pem'),
    crl: join(abs, 'ca.crl.pem'),
    clientCert: (name: string) => clientPath(name, '.pem'),
    clientKey: (name: string) => clientPath(name, '-key.pem'),
  });
}

function validateOptions(opts: unknown): { dir: string; clients: string[]; trustDomain: string } {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new TypeError('"options" must be an object');
  }
  const o = opts as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['dir', 'clients', 'trustDomain'].includes(key)) {
      throw new TypeError(
        `"options" has an unknown option "${key}"; known options: dir, clients, trustDomain`,
      );
    }
  }
  const dir = o.dir ?? DEFAULT_PKI_DIR;
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('"dir" must be a non-empty string');
  const clients = o.clients ?? ['demo'];
  if (!Array.isArray(clients) || clients.some((c) => typeof c !== 'string' || !CLIENT_NAME.test(c))) {
    throw new TypeError(`"clients" must be an array of names matching ${CLIENT_NAME}`);
  }
  const trustDomain = o.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  if (typeof trustDomain !== 'string' || parseSpiffeId(`spiffe://${trustDomain}`) === undefined) {
    throw new TypeError(
      `"trustDomain" must be a SPIFFE trust domain ([a-z0-9._-]+), got ${JSON.stringify(trustDomain)}`,
    );
  }
  for (const name of clients as string[]) {
    if (parseSpiffeId(`spiffe://${trustDomain}/${name}`) === undefined) {
      throw new TypeError(`client name ${JSON.stringify(name)} does not make a valid SPIFFE ID path`);
    }
  }
  return { dir, clients: [...new Set(clients as string[])], trustDomain };
}

/** Why existing material cannot be kept, or undefined when it can. */
type Verdict = { ok: true; bundle: LoadedTlsBundle } | { ok: false; missing: boolean; reason: string };

function inspect(files: TlsFiles, usage: 'server' | 'client' | undefined): Verdict {
  if (!existsSync(files.cert) || !existsSync(files.key))
    return { ok: false, missing: true, reason: 'missing' };
  try {
    // Checking at now + 7 days refuses material that is about to expire as well as expired.
    const soon = new Date(Date.now() + RENEW_BEFORE_MS);
    const bundle = loadTlsBundle(files, usage !== undefined ? { usage, now: soon } : { now: soon });
    if (bundle.notBefore.getTime() > Date.now())
      return { ok: false, missing: false, reason: 'not yet valid' };
    return { ok: true, bundle };
  } catch (err) {
    return { ok: false, missing: false, reason: isShieldError(err) ? err.message : 'cannot be loaded' };
  }
}

function issuedBy(leaf: X509Certificate, ca: X509Certificate): boolean {
  return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
}

/**
 * Create or refresh a development PKI folder: a CA, a `localhost` server certificate, one client
 * certificate per name (SPIFFE ID `spiffe://<trustDomain>/<name>`), and an empty CRL. Idempotent:
 * material that parses, matches its key, is signed by the CA and does not expire within 7 days is
 * kept byte for byte; anything missing or unusable is re-created (a new CA re-issues everything).
 * Keys are written 0600, folders 0700, every file atomically. Clients not listed are left alone.
 *
 * @example
 * const pki = await initDevPki({ clients: ['demo', 'sample-model'] });
 * https.createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) });
 */
export async function initDevPki(opts: DevPkiOptions = {}): Promise<DevPkiInitResult> {
  const { dir, clients, trustDomain } = validateOptions(opts);
  const layout = devPkiLayout(dir);
  ensurePrivateDir(layout.dir);
  return withDirLock(layout.dir, async () => {
    ensurePrivateDir(join(layout.dir, 'clients'));
    const report: DevPkiFileReport[] = [];
    const note = (path: string, verdict: Verdict): void => {
      if (verdict.ok) report.push({ path, status: 'kept' });
      else if (verdict.missing) report.push({ path, status: 'created' });
      else report.push({ path, status: 'replaced', reason: verdict.reason });
    };
    const writePair = (
      certPath: string,
      keyPath: string,
      issued: { certPem: string; keyPem: string },
    ): void => {
      // Key first: a watcher that sees the new certificate finds its key already in place.
      writeFileAtomic(keyPath, issued.keyPem, KEY_MODE);
      writeFileAtomic(certPath, issued.certPem, PUBLIC_MODE);
    };
    const keep = (keyPath: string): void => {
      // An existing key keeps whatever mode it had; a dev key must still not be world-readable.
      chmodSync(keyPath, KEY_MODE);
    };

    // The CA: kept when it is a CA, valid for 7 more days and matches its key.
    let caVerdict = inspect({ cert: layout.caCert, key: layout.caKey }, undefined);
    if (caVerdict.ok && !caVerdict.bundle.leaf.ca) {
      caVerdict = { ok: false, missing: false, reason: 'is not a CA certificate' };
    }
    let ca: DevCertificateAuthority;
    if (caVerdict.ok) {
      ca = await DevCertificateAuthority.load(
        readFileSync(layout.caCert, 'utf8'),
        readFileSync(layout.caKey, 'utf8'),
      );
      keep(layout.caKey);
    } else {
      ca = await DevCertificateAuthority.create();
      writePair(layout.caCert, layout.caKey, ca);
    }
    note(layout.caCert, caVerdict);
    const caCert = new X509Certificate(ca.certPem);

    const keepOrIssue = async (
      certPath: string,
      keyPath: string,
      usage: 'server' | 'client',
      extra: (bundle: LoadedTlsBundle) => string | undefined,
      issue: () => Promise<IssuedCertificate>,
    ): Promise<void> => {
      let verdict = inspect({ cert: certPath, key: keyPath }, usage);
      if (verdict.ok) {
        const problem = issuedBy(verdict.bundle.leaf, caCert)
          ? extra(verdict.bundle)
          : 'is not signed by the CA';
        if (problem !== undefined) verdict = { ok: false, missing: false, reason: problem };
      }
      if (verdict.ok) keep(keyPath);
      else writePair(certPath, keyPath, await issue());
      note(certPath, verdict);
    };

    await keepOrIssue(
      layout.serverCert,
      layout.serverKey,
      'server',
      (b) =>
        b.leaf.checkHost('localhost') !== undefined &&
        b.leaf.checkIP('127.0.0.1') !== undefined &&
        b.leaf.checkIP('::1') !== undefined
          ? undefined
          : 'does not cover localhost, 127.0.0.1 and ::1',
      () => ca.issueServer(),
    );

    const spiffeIds: Record<string, string> = {};
    for (const name of clients) {
      const spiffeId = `spiffe://${trustDomain}/${name}`;
      spiffeIds[name] = spiffeId;
      await keepOrIssue(
        layout.clientCert(name),
        layout.clientKey(name),
        'client',
        (b) => (b.spiffeId === spiffeId ? undefined : `does not carry the SPIFFE ID ${spiffeId}`),
        () => ca.issueClient({ spiffeId, commonName: name }),
      );
    }

    // The CRL: kept when it is signed by this CA and current for 7 more days.
    let crlVerdict: Verdict;
    if (!existsSync(layout.crl)) crlVerdict = { ok: false, missing: true, reason: 'missing' };
    else {
      try {
        const soon = new Date(Date.now() + RENEW_BEFORE_MS);
        const bundle = loadTlsBundle(
          { cert: layout.caCert, key: layout.caKey, ca: layout.caCert, crl: layout.crl },
          { now: soon },
        );
        crlVerdict = { ok: true, bundle };
      } catch (err) {
        crlVerdict = {
          ok: false,
          missing: false,
          reason: isShieldError(err) ? err.message : 'cannot be loaded',
        };
      }
    }
    if (!crlVerdict.ok) {
      writeFileAtomic(
        layout.crl,
        await ca.crlPem({ nextUpdate: new Date(Date.now() + CRL_LIFETIME_MS) }),
        PUBLIC_MODE,
      );
    }
    note(layout.crl, crlVerdict);

    return Object.freeze({
      ...layout,
      trustDomain,
      clients: Object.freeze(spiffeIds),
      report: Object.freeze(report),
    });
  });
}
