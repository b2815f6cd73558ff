import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { assertInteger, assertKnownKeys, assertOneOf, assertString } from './options.validation.js';
import { ShieldError } from './shield.error.js';
import { certificateFingerprint, spiffeIdOf } from './certificate.inspect.js';
import { crlProblem, parseCrl, type ParsedCrl } from './crl.check.js';

/** Paths of the PEM files of one TLS identity. */
export interface TlsFiles {
  /** Leaf certificate, optionally followed by its intermediates. */
  cert: string;
  /** Unencrypted private key of the leaf (PKCS#8, SEC1 or PKCS#1 PEM). */
  key: string;
  /** CA certificates to trust for the peer (client CA for a server, server CA for a client). */
  ca?: string;
  /** CRL(s) of the CA, PEM `X509 CRL`. Needs `ca`. */
  crl?: string;
}

/** A certificate bundle read from disk and checked: ready for `tls.createSecureContext`. */
export interface LoadedTlsBundle {
  readonly files: Readonly<TlsFiles>;
  /** Leaf + chain, PEM, as read. */
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
  readonly crl?: Buffer;
  /**
   * Each CRL of `crl`, as checked, in its own PEM: pass this (not `crl`) to Node's `crl` option.
   * Node loads only the first CRL of a PEM string, so a file holding an old CRL followed by a newer
   * one would have OpenSSL ignore every revocation listed only in the newer one.
   */
  readonly crls?: readonly string[];
  readonly leaf: X509Certificate;
  /** SHA-256 of the leaf DER, lowercase hex, no colons. */
  readonly fingerprint256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The leaf's SPIFFE ID, when it carries exactly one valid one. */
  readonly spiffeId?: string;
}

/** What a certificate is loaded for: its extended key usage must allow it. */
export type TlsUsage = 'server' | 'client';

/** Options of {@link loadTlsBundle}. */
export interface LoadTlsBundleOptions {
  /** When set, a leaf with an EKU extension must list serverAuth / clientAuth. */
  usage?: TlsUsage;
  /** The clock for validity checks (tests). */
  now?: Date;
}

/** Certificates, keys and CA bundles are small; refuse to read a huge or endless file. */
const MAX_PEM_BYTES = 1024 * 1024;
/** CRLs of a busy CA can be large. */
const MAX_CRL_BYTES = 32 * 1024 * 1024;
/** The largest cap {@link readBoundedFile} takes: everything it reads is held in memory at once. */
const MAX_BOUNDED_READ_BYTES = 256 * 1024 * 1024;

const EKU_OID: Readonly<Record<TlsUsage, string>> = {
  server: '1.3.6.1.5.5.7.3.1',
  client: '1.3.6.1.5.5.7.3.2',
};

const CERT_BEGIN = '-----BEGIN CERTIFICATE-----';
/** Any PEM BEGIN line, and its label. */
const PEM_BEGIN = /-----BEGIN ([^\r\n]*?)-----/g;
/** One PEM certificate block at a given offset (sticky): the BEGIN line, base64 lines, the END line. */
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/y;
const CRL_BLOCK = /-----BEGIN X509 CRL-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END X509 CRL-----/g;

/** The OS reason of a failed fs call, e.g. `ENOENT: no such file or directory`. */
function osReason(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = err.message.split(', ')[0] ?? err.message;
    return code && !message.startsWith(code) ? `${code}: ${message}` : message;
  }
  return String(err);
}

/**
 * Read a regular file of at most `maxBytes`, for start-up and reloads. Opened non-blocking and
 * checked with fstat on the same descriptor, so a FIFO or a device (a mistyped path to /dev/zero)
 * fails at once instead of hanging, and a huge or endless file is refused instead of filling memory.
 * A refusal is a `ShieldError` `ERR_CERT_FILE_UNREADABLE` whose message names `role`, the file and
 * the reason (the OS error, "not a regular file", the size), never the content.
 *
 * @example
 * const pem = readBoundedFile('/etc/shield/ca.pem', 'CA', 1024 * 1024);
 */
export function readBoundedFile(path: string, role: string, maxBytes: number): Buffer {
  assertString('path', path);
  assertString('role', role);
  assertInteger('maxBytes', maxBytes, 1, MAX_BOUNDED_READ_BYTES);
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    throw new ShieldError('ERR_CERT_FILE_UNREADABLE', {
      message: `${role} file ${path} is unreadable: ${osReason(err)}`,
      cause: err,
    });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new ShieldError('ERR_CERT_FILE_UNREADABLE', {
        message: `${role} file ${path} is not a regular file`,
      });
    }
    if (stat.size > maxBytes) {
      throw new ShieldError('ERR_CERT_FILE_UNREADABLE', {
        message: `${role} file ${path} is ${stat.size} bytes, more than the ${maxBytes} allowed`,
      });
    }
    // Never more than maxBytes + 1 in memory, whatever the file says of its size: a file that grows
    // while it is read, or one that reports size 0 and streams (procfs, sysfs, FUSE), stops here.
    let data = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(stat.size + 1, 64 * 1024)));
    let length = 0;
    for (;;) {
      if (length === data.length) {
        if (length > maxBytes) {
          throw new ShieldError('ERR_CERT_FILE_UNREADABLE', {
            message: `${role} file ${path} grew beyond the ${maxBytes} bytes allowed while being read`,
          });
        }
        const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, data.length * 2));
        data.copy(bigger, 0, 0, length);
        data = bigger;
      }
      const read = readSync(fd, data, length, data.length - length, null);
      if (read === 0) break;
      length += read;
    }
    return Buffer.from(data.subarray(0, length));
  } catch (err) {
    if (err instanceof ShieldError) throw err;
    throw new ShieldError('ERR_CERT_FILE_UNREADABLE', {
      message: `${role} file ${path} is unreadable: ${osReason(err)}`,
      cause: err,
    });
  } finally {
    closeSync(fd);
  }
}

/**
 * The PEM CERTIFICATE blocks of a file. Every BEGIN line must open a strictly formed block (a line
 * break, base64 lines, the END line); one that does not is refused, not skipped. OpenSSL reads the
 * file on its own terms: it trusts an indented or space-padded certificate that no check here saw,
 * and a truncated block swallows the certificate after it, so a skipped block would make the file
 * hold something other than what was checked.
 */
function certificateBlocks(data: Buffer, path: string, role: 'certificate' | 'CA'): string[] {
  const text = data.toString('latin1');
  const blocks: string[] = [];
  PEM_BEGIN.lastIndex = 0;
  for (let begin = PEM_BEGIN.exec(text); begin !== null; begin = PEM_BEGIN.exec(text)) {
    const label = begin[1] ?? '';
    if (label !== 'CERTIFICATE') {
      // OpenSSL also loads `TRUSTED CERTIFICATE` and `X509 CERTIFICATE` blocks as certificates (for
      // `ca` and `cert` alike), which no check here would have seen. Other labels (a private key
      // kept in the same file, a CRL) are not certificates and stay out of this list.
      if (label.includes('CERTIFICATE')) {
        throw new ShieldError('ERR_CERT_INVALID', {
          message: `${role} file ${path}: block #${blocks.length + 1} is labelled ${JSON.stringify(label.slice(0, 40))}; only ${CERT_BEGIN} blocks are accepted`,
        });
      }
      continue;
    }
    CERT_BLOCK.lastIndex = begin.index;
    const block = CERT_BLOCK.exec(text)?.[0];
    if (block === undefined) {
      throw new ShieldError('ERR_CERT_INVALID', {
        message: `${role} file ${path}: certificate #${blocks.length + 1} is not a well-formed PEM block (expected base64 lines between ${CERT_BEGIN} and -----END CERTIFICATE-----, without spaces or tabs)`,
      });
    }
    blocks.push(block);
    PEM_BEGIN.lastIndex = begin.index + block.length;
  }
  if (blocks.length === 0) {
    throw new ShieldError('ERR_CERT_INVALID', {
      message: `${role} file ${path} holds no PEM certificate (expected ${CERT_BEGIN})`,
    });
  }
  return blocks;
}

/** Every PEM CERTIFICATE block of a file, parsed; throws ERR_CERT_INVALID naming the file. */
function parseCertificates(data: Buffer, path: string, role: 'certificate' | 'CA'): X509Certificate[] {
  return certificateBlocks(data, path, role).map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new ShieldError('ERR_CERT_INVALID', {
        message: `${role} file ${path}: certificate #${i + 1} cannot be parsed`,
        cause: err,
      });
    }
  });
}

function parsePrivateKey(data: Buffer, path: string): KeyObject {
  const text = data.toString('latin1');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new ShieldError('ERR_CERT_KEY_INVALID', {
      message: `private key file ${path} is encrypted; a passphrase-protected key is not supported`,
    });
  }
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text)) {
    throw new ShieldError('ERR_CERT_KEY_INVALID', {
      message: `private key file ${path} holds no PEM private key`,
    });
  }
  try {
    return createPrivateKey({ key: data, format: 'pem' });
  } catch (err) {
    // The library message may quote parts of its input: keep it in `cause` only.
    throw new ShieldError('ERR_CERT_KEY_INVALID', {
      message: `private key file ${path} cannot be parsed as a private key`,
      cause: err,
    });
  }
}

function parseCrls(data: Buffer, path: string): ParsedCrl[] {
  const text = data.toString('latin1');
  const blocks = [...text.matchAll(CRL_BLOCK)];
  if (blocks.length === 0) {
    throw new ShieldError('ERR_CERT_CRL_INVALID', {
      message: `CRL file ${path} holds no PEM CRL (expected -----BEGIN X509 CRL-----)`,
    });
  }
  return blocks.map((m, i) => {
    try {
      return parseCrl(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
    } catch (err) {
      throw new ShieldError('ERR_CERT_CRL_INVALID', {
        message: `CRL file ${path}: CRL #${i + 1} cannot be parsed`,
        cause: err,
      });
    }
  });
}

/** Node prints validity as `Jan  1 00:00:00 2026 GMT`; Date parses that form exactly. */
function dateOf(text: string, path: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) {
    throw new ShieldError('ERR_CERT_INVALID', {
      message: `certificate ${path} has an unreadable validity date`,
    });
  }
  return date;
}

function checkValidity(
  cert: X509Certificate,
  path: string,
  label: string,
  now: Date,
): { notBefore: Date; notAfter: Date } {
  const notBefore = dateOf(cert.validFrom, path);
  const notAfter = dateOf(cert.validTo, path);
  if (now.getTime() > notAfter.getTime()) {
    throw new ShieldError('ERR_CERT_EXPIRED', {
      message: `${label} ${path} expired on ${notAfter.toISOString()}`,
    });
  }
  if (now.getTime() < notBefore.getTime()) {
    throw new ShieldError('ERR_CERT_NOT_YET_VALID', {
      message: `${label} ${path} is not valid before ${notBefore.toISOString()}`,
    });
  }
  return { notBefore, notAfter };
}

/** Check the shape of a `TlsFiles` (a configuration mistake is a TypeError naming the field). */
export function validateTlsFiles(files: unknown): Readonly<TlsFiles> {
  assertKnownKeys('files', files, ['cert', 'key', 'ca', 'crl']);
  assertString('files.cert', files.cert);
  assertString('files.key', files.key);
  if (files.ca !== undefined) assertString('files.ca', files.ca);
  if (files.crl !== undefined) {
    assertString('files.crl', files.crl);
    if (files.ca === undefined) {
      // A CRL is checked against the CA that issued it; without a CA file it cannot be.
      throw new TypeError('"files.crl" needs "files.ca": a CRL is only used to check peers against a CA');
    }
  }
  const out: TlsFiles = { cert: files.cert, key: files.key };
  if (files.ca !== undefined) out.ca = files.ca;
  if (files.crl !== undefined) out.crl = files.crl;
  return Object.freeze(out);
}

/**
 * Read and check a certificate bundle: the leaf and its chain parse, are within their validity
 * period, the key parses (unencrypted) and matches the leaf, the EKU allows `usage`, the CA file
 * holds at least one certificate, and each CRL parses, is current and is signed by a certificate
 * of the CA file. Any problem throws a `ShieldError` (`ERR_CERT_*`) whose message names the file
 * and the problem, never key material. Synchronous: meant for start-up and for reloads.
 *
 * @example
 * const bundle = loadTlsBundle({ cert: 'pki/localhost.pem', key: 'pki/localhost-key.pem' }, { usage: 'server' });
 * https.createServer({ cert: bundle.cert, key: bundle.key, minVersion: 'TLSv1.2' });
 */
export function loadTlsBundle(files: TlsFiles, opts: LoadTlsBundleOptions = {}): LoadedTlsBundle {
  const resolved = validateTlsFiles(files);
  assertKnownKeys('options', opts, ['usage', 'now']);
  if (opts.usage !== undefined) assertOneOf('options.usage', opts.usage, ['server', 'client'] as const);
  if (opts.now !== undefined && !(opts.now instanceof Date && !Number.isNaN(opts.now.getTime()))) {
    throw new TypeError('"options.now" must be a valid Date');
  }
  const now = opts.now ?? new Date();

  const cert = readBoundedFile(resolved.cert, 'certificate', MAX_PEM_BYTES);
  const key = readBoundedFile(resolved.key, 'private key', MAX_PEM_BYTES);
  const ca = resolved.ca !== undefined ? readBoundedFile(resolved.ca, 'CA', MAX_PEM_BYTES) : undefined;
  const crl = resolved.crl !== undefined ? readBoundedFile(resolved.crl, 'CRL', MAX_CRL_BYTES) : undefined;

  const chain = parseCertificates(cert, resolved.cert, 'certificate');
  const [leaf] = chain;
  if (leaf === undefined)
    throw new ShieldError('ERR_CERT_INVALID', { message: `certificate ${resolved.cert} is empty` });
  const { notBefore, notAfter } = checkValidity(leaf, resolved.cert, 'certificate', now);
  // An expired intermediate breaks every peer's chain building just as surely as an expired leaf.
  chain.slice(1).forEach((c, i) => checkValidity(c, resolved.cert, `chain certificate #${i + 2} of`, now));

  const privateKey = parsePrivateKey(key, resolved.key);
  if (!keyMatches(leaf, privateKey)) {
    throw new ShieldError('ERR_CERT_KEY_MISMATCH', {
      message: `private key ${resolved.key} does not match certificate ${resolved.cert}`,
    });
  }

  if (opts.usage !== undefined) {
    // Node's X509Certificate.keyUsage holds the *extended* key usage OIDs (undefined when the
    // extension is absent: RFC 5280 §4.2.1.12, no EKU means no restriction). anyExtendedKeyUsage
    // is not accepted: OpenSSL's TLS purpose check refuses it too.
    const eku = leaf.keyUsage as string[] | undefined;
    if (eku !== undefined && !eku.includes(EKU_OID[opts.usage])) {
      throw new ShieldError('ERR_CERT_USAGE', {
        message: `certificate ${resolved.cert} is not allowed for TLS ${opts.usage} authentication (its extended key usage lacks ${opts.usage === 'server' ? 'serverAuth' : 'clientAuth'})`,
      });
    }
  }

  let caCerts: X509Certificate[] = [];
  if (ca !== undefined && resolved.ca !== undefined) caCerts = parseCertificates(ca, resolved.ca, 'CA');
  let crls: string[] | undefined;
  if (crl !== undefined && resolved.crl !== undefined) {
    const crlPath = resolved.crl;
    const parsedCrls = parseCrls(crl, crlPath);
    parsedCrls.forEach((parsed, i) => {
      const problem = crlProblem(parsed, caCerts, now);
      if (problem !== undefined) {
        throw new ShieldError('ERR_CERT_CRL_INVALID', { message: `CRL #${i + 1} of ${crlPath} ${problem}` });
      }
    });
    crls = parsedCrls.map((parsed) => parsed.pem);
  }

  checkOpenSslAccepts(cert, key, resolved);
  checkKeyStrength(leaf, resolved.cert);

  const spiffeId = spiffeIdOf(leaf);
  const bundle: {
    -readonly [K in keyof LoadedTlsBundle]: LoadedTlsBundle[K];
  } = {
    files: resolved,
    cert,
    key,
    leaf,
    fingerprint256: certificateFingerprint(leaf),
    notBefore,
    notAfter,
  };
  if (ca !== undefined) bundle.ca = ca;
  if (crl !== undefined) bundle.crl = crl;
  if (crls !== undefined) bundle.crls = Object.freeze(crls);
  if (spiffeId !== undefined) bundle.spiffeId = spiffeId;
  return Object.freeze(bundle);
}

/**
 * Read a CA file used on its own (a trust store without a client certificate): bounded like the
 * CA of {@link loadTlsBundle} (1 MiB), every certificate block strictly formed and parseable, at
 * least one. Returns the bytes as read, for `tls.connect`'s `ca`. A refusal is a `ShieldError`
 * (`ERR_CERT_FILE_UNREADABLE`, `ERR_CERT_INVALID`) naming the file: a missing, empty or mangled
 * trust store must stop the app, not fall back to public roots or to part of the file.
 *
 * @example
 * const ca = loadCaBundle('/etc/shield/upstream-ca.pem');
 * tls.connect({ host, port, ca, rejectUnauthorized: true });
 */
export function loadCaBundle(path: string): Buffer {
  const data = readBoundedFile(path, 'CA', MAX_PEM_BYTES);
  parseCertificates(data, path, 'CA');
  return data;
}

/**
 * A CA bundle given as PEM text in the options rather than as a file: the same strict checks as
 * {@link loadCaBundle} (well-formed CERTIFICATE blocks only, each parsed, 1 MiB at most). `field`
 * names the option in errors.
 */
export function parseCaPem(pem: string | Buffer, field: string): Buffer {
  const data = typeof pem === 'string' ? Buffer.from(pem, 'utf8') : pem;
  if (data.length > MAX_PEM_BYTES) {
    throw new ShieldError('ERR_CERT_INVALID', {
      message: `CA "${field}" is ${data.length} bytes, more than the ${MAX_PEM_BYTES} allowed`,
    });
  }
  parseCertificates(data, `"${field}"`, 'CA');
  return data;
}

/**
 * Certificates given as PEM text in the options (an identity provider's signing certificates, say),
 * parsed: the strict checks of {@link parseCaPem} (1 MiB at most; only well-formed `CERTIFICATE`
 * blocks, none skipped; each one parsed; at least one), without any trust decision. Text outside
 * the blocks is ignored, as OpenSSL does. A refusal is a `ShieldError` `ERR_CERT_INVALID` naming
 * `field`, never quoting the text.
 *
 * @example
 * const [signing] = parseCertificatePem(process.env.IDP_CERT_PEM ?? '', 'identityProviders[0].signingCertificates[0]');
 */
export function parseCertificatePem(pem: string | Buffer, field: string): X509Certificate[] {
  const data = typeof pem === 'string' ? Buffer.from(pem, 'utf8') : pem;
  if (data.length > MAX_PEM_BYTES) {
    throw new ShieldError('ERR_CERT_INVALID', {
      message: `certificate "${field}" is ${data.length} bytes, more than the ${MAX_PEM_BYTES} allowed`,
    });
  }
  return parseCertificates(data, `"${field}"`, 'certificate');
}

/** OpenSSL's reason for a refusal ("ee key too small"): a fixed phrase, never key material. */
function openSslReason(err: unknown): string {
  const reason = (err as { reason?: unknown } | null)?.reason;
  return typeof reason === 'string' && /^[a-z0-9 ]{1,80}$/i.test(reason) ? ` (${reason})` : '';
}

/**
 * OpenSSL applies checks of its own when a certificate and key are put in a TLS context (its
 * security level refuses, say, an RSA key under 1024 bits). A bundle that passed the checks above
 * but that OpenSSL refuses would stop the app at start with a bare OpenSSL error naming no file,
 * and on rotation would be taken by the watcher as the new bundle while the server kept the old one
 * and `reload()` reported success. So the loader asks OpenSSL too, at load time.
 */
function checkOpenSslAccepts(cert: Buffer, key: Buffer, files: Readonly<TlsFiles>): void {
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ShieldError('ERR_CERT_INVALID', {
      message: `certificate ${files.cert} with key ${files.key} is refused by OpenSSL${openSslReason(err)}`,
      cause: err,
    });
  }
}

/**
 * Mozilla's "intermediate" TLS profile: RSA keys of at least 2048 bits, ECDSA on P-256, P-384 or
 * P-521, or Ed25519/Ed448. OpenSSL's default security level still accepts RSA-1024, which is
 * within reach of factoring budgets; refuse it here so a weak key never serves or authenticates.
 */
function checkKeyStrength(leaf: X509Certificate, file: string): void {
  const key = leaf.publicKey;
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  let ok = false;
  let what: string = type ?? 'unknown';
  if (type === 'rsa' || type === 'rsa-pss') {
    ok = (details.modulusLength ?? 0) >= 2048;
    what = `an RSA key of ${details.modulusLength ?? '?'} bits (at least 2048 needed)`;
  } else if (type === 'ec') {
    ok = ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '');
    what = `an EC key on curve ${details.namedCurve ?? '?'} (P-256, P-384 or P-521 needed)`;
  } else if (type === 'ed25519' || type === 'ed448') {
    ok = true;
  }
  if (!ok) throw new ShieldError('ERR_CERT_INVALID', { message: `certificate ${file} has ${what}` });
}

/** checkPrivateKey throws for some key type pairs (an RSA key against an EC certificate). */
function keyMatches(leaf: X509Certificate, key: KeyObject): boolean {
  try {
    return leaf.checkPrivateKey(key);
  } catch {
    return false;
  }
}

/** True when two bundles hold the same leaf and the same key, CA and CRL bytes. */
export function sameTlsBundle(a: LoadedTlsBundle, b: LoadedTlsBundle): boolean {
  return (
    a.fingerprint256 === b.fingerprint256 &&
    a.cert.equals(b.cert) &&
    a.key.equals(b.key) &&
    equalOptional(a.ca, b.ca) &&
    equalOptional(a.crl, b.crl)
  );
}

function equalOptional(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}
