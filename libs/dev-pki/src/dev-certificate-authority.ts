// @peculiar/x509 uses tsyringe, which needs the Reflect metadata API loaded before it.
import 'reflect-metadata';
import {
  createPrivateKey,
  KeyObject,
  randomBytes,
  webcrypto,
  X509Certificate as NodeCertificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { certificateFingerprint, parseSpiffeId } from '@inference-shield/core/internal';

x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>);

/** ECDSA P-256 with SHA-256: small, fast, and accepted by every TLS stack we talk to. */
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** Leaf certificates live 90 days by default (the Let's Encrypt lifetime). */
export const DEFAULT_LEAF_DAYS = 90;
/** The dev CA lives 10 years. */
export const DEFAULT_CA_DAYS = 3650;
/** Certificates start a minute in the past so a peer whose clock is slightly behind accepts them. */
const CLOCK_SKEW_MS = MINUTE;

/** Extended key usages the dev CA can put in a leaf. */
export type DevExtendedKeyUsage = 'serverAuth' | 'clientAuth';

/** A key pair and its certificate, PEM encoded. */
export interface IssuedCertificate {
  /** The leaf certificate alone. */
  readonly certPem: string;
  /** Its PKCS#8 private key. */
  readonly keyPem: string;
  /** Leaf followed by the CA certificate. */
  readonly chainPem: string;
  /** Lowercase hex, as {@link DevCertificateAuthority.revoke} takes it. */
  readonly serialNumber: string;
  /** SHA-256 of the DER, lowercase hex, no colons (as `certificateFingerprint` of `@inference-shield/core`). */
  readonly fingerprint256: string;
}

/** Options of {@link DevCertificateAuthority.create}. */
export interface DevCaOptions {
  commonName?: string;
  notBefore?: Date;
  notAfter?: Date;
}

/** Options shared by server and client certificates. */
export interface DevLeafOptions {
  commonName?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Overrides the EKU (tests of wrong-usage certificates); an empty list omits the extension. */
  extendedKeyUsage?: DevExtendedKeyUsage[];
}

/** Options of {@link DevCertificateAuthority.issueServer}. */
export interface DevServerOptions extends DevLeafOptions {
  /** DNS names and IP addresses; default `['localhost', '127.0.0.1', '::1']`. */
  hosts?: string[];
}

/** Options of {@link DevCertificateAuthority.issueClient}. */
export interface DevClientOptions extends DevLeafOptions {
  /** Validated SPIFFE ID, put first among the URI SANs. */
  spiffeId?: string;
  /** More URI SANs, not validated (tests of malformed or duplicate identities). */
  uris?: string[];
  dnsNames?: string[];
}

/** Options of {@link DevCertificateAuthority.crlPem}. */
export interface DevCrlOptions {
  /** Default: 30 days from now. */
  nextUpdate?: Date;
  /** Default: a minute ago, or a day before `nextUpdate` when that is in the past. */
  thisUpdate?: Date;
}

const EKU_OIDS: Readonly<Record<DevExtendedKeyUsage, string>> = {
  serverAuth: x509.ExtendedKeyUsage.serverAuth,
  clientAuth: x509.ExtendedKeyUsage.clientAuth,
};

/** A random positive 128-bit serial (RFC 5280 §4.1.2.2: positive, at most 20 octets, unpredictable). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  // First octet 0x01..0x7f: positive and minimally encoded in DER, never a leading zero octet.
  bytes[0] = ((bytes[0] ?? 0) % 0x7f) + 1;
  return bytes.toString('hex');
}

function normalizeSerial(serial: string): string {
  if (typeof serial !== 'string') throw new TypeError('"serialNumber" must be a hex string');
  const hex = serial.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex))
    throw new TypeError(`"serialNumber" must be a hex string, got ${JSON.stringify(serial)}`);
  return hex.replace(/^(?:00)+(?=[0-9a-f]{2})/, '');
}

function checkDate(field: string, value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime()))
    throw new TypeError(`"${field}" must be a valid Date`);
  return value;
}

function validity(
  opts: { notBefore?: Date; notAfter?: Date },
  days: number,
): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  const notBefore = checkDate('notBefore', opts.notBefore) ?? new Date(now - CLOCK_SKEW_MS);
  const notAfter = checkDate('notAfter', opts.notAfter) ?? new Date(now + days * DAY);
  if (notAfter.getTime() <= notBefore.getTime()) throw new TypeError('"notAfter" must be after "notBefore"');
  return { notBefore, notAfter };
}

function checkStrings(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) {
    throw new TypeError(`"${field}" must be an array of non-empty strings`);
  }
  return value as string[];
}

function checkKnownKeys(field: string, value: object, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new TypeError(`"${field}" has an unknown option "${key}"`);
  }
}

function pemOfKey(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

function subject(commonName: string): x509.JsonName {
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > 64) {
    // RFC 5280 upper bound ub-common-name: 64 characters.
    throw new TypeError(
      `"commonName" must be a string of 1 to 64 characters, got ${JSON.stringify(commonName)}`,
    );
  }
  return [{ CN: [commonName] }];
}

/**
 * A throw-away certificate authority for development and tests: ECDSA P-256, SHA-256, SKI/AKI on
 * every certificate (OpenSSL uses AKI to find issuers and CRLs), CRLs on demand. Never for
 * production: its key sits in a file next to the certificates.
 *
 * @example
 * const ca = await DevCertificateAuthority.create();
 * const server = await ca.issueServer();
 * const client = await ca.issueClient({ spiffeId: 'spiffe://shield.local/demo' });
 */
export class DevCertificateAuthority {
  /** The CA certificate, PEM. */
  readonly certPem: string;
  /** The CA private key, PKCS#8 PEM. */
  readonly keyPem: string;
  private readonly cert: x509.X509Certificate;
  private readonly signingKey: webcrypto.CryptoKey;
  private readonly keyId: string;
  private readonly revoked = new Map<string, Date>();
  private lastCrlNumber = 0;

  private constructor(
    cert: x509.X509Certificate,
    signingKey: webcrypto.CryptoKey,
    keyPem: string,
    keyId: string,
  ) {
    this.cert = cert;
    this.certPem = cert.toString('pem') + '\n';
    this.signingKey = signingKey;
    this.keyPem = keyPem;
    this.keyId = keyId;
  }

  /** Create a new CA with a fresh key (CA true, critical; keyCertSign + cRLSign, critical). */
  static async create(opts: DevCaOptions = {}): Promise<DevCertificateAuthority> {
    checkKnownKeys('options', opts, ['commonName', 'notBefore', 'notAfter']);
    const keys = (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
    const { notBefore, notAfter } = validity(opts, DEFAULT_CA_DAYS);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: subject(opts.commonName ?? 'Inference Shield Dev CA'),
      notBefore,
      notAfter,
      keys: keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ski,
        new x509.AuthorityKeyIdentifierExtension(ski.keyId),
      ],
    });
    return new DevCertificateAuthority(cert, keys.privateKey, pemOfKey(keys.privateKey), ski.keyId);
  }

  /** Use an existing CA certificate and key (as written by `initDevPki`). Throws a TypeError when they do not form a CA. */
  static async load(certPem: string, keyPem: string): Promise<DevCertificateAuthority> {
    let nodeCert: NodeCertificate;
    let keyObject: KeyObject;
    try {
      nodeCert = new NodeCertificate(certPem);
      keyObject = createPrivateKey(keyPem);
    } catch (err) {
      throw new TypeError('CA certificate or key cannot be parsed', { cause: err });
    }
    if (!nodeCert.ca)
      throw new TypeError('the certificate is not a CA certificate (basicConstraints CA is not true)');
    if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new TypeError('the dev CA key must be an ECDSA P-256 key');
    }
    if (!nodeCert.checkPrivateKey(keyObject))
      throw new TypeError('the CA key does not match the CA certificate');
    const cert = new x509.X509Certificate(nodeCert.raw);
    const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
    const signingKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, KEY_ALGORITHM, true, ['sign']);
    const skiExt = cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const keyId =
      skiExt?.keyId ?? (await x509.SubjectKeyIdentifierExtension.create(await cert.publicKey.export())).keyId;
    return new DevCertificateAuthority(
      cert,
      signingKey,
      keyObject.export({ type: 'pkcs8', format: 'pem' }).toString(),
      keyId,
    );
  }

  /** SHA-256 fingerprint of the CA certificate, lowercase hex. */
  get fingerprint256(): string {
    return certificateFingerprint(Buffer.from(this.cert.rawData));
  }

  /**
   * A TLS server certificate: EKU serverAuth, SANs typed as DNS or IP (RFC 6125 §6.4.4: clients
   * match IP addresses only against iPAddress SANs), CN the first host. Valid 90 days by default.
   */
  async issueServer(opts: DevServerOptions = {}): Promise<IssuedCertificate> {
    checkKnownKeys('options', opts, ['hosts', 'commonName', 'notBefore', 'notAfter', 'extendedKeyUsage']);
    const hosts =
      opts.hosts === undefined ? ['localhost', '127.0.0.1', '::1'] : checkStrings('hosts', opts.hosts);
    const names: x509.JsonGeneralName[] = hosts.map((host) =>
      isIP(host) !== 0 ? { type: 'ip', value: host } : { type: 'dns', value: host },
    );
    return this.issue(opts.commonName ?? hosts[0] ?? 'server', names, opts, ['serverAuth']);
  }

  /**
   * A TLS client certificate: EKU clientAuth, the SPIFFE ID as the URI SAN (X509-SVID §2).
   * `spiffeId` is validated; `uris` are added as given, so tests can build malformed identities.
   */
  async issueClient(opts: DevClientOptions = {}): Promise<IssuedCertificate> {
    checkKnownKeys('options', opts, [
      'spiffeId',
      'commonName',
      'uris',
      'dnsNames',
      'notBefore',
      'notAfter',
      'extendedKeyUsage',
    ]);
    if (opts.spiffeId !== undefined && parseSpiffeId(opts.spiffeId) === undefined) {
      throw new TypeError(`"spiffeId" must be a valid SPIFFE ID, got ${JSON.stringify(opts.spiffeId)}`);
    }
    const uris = [
      ...(opts.spiffeId !== undefined ? [opts.spiffeId] : []),
      ...checkStrings('uris', opts.uris),
    ];
    const names: x509.JsonGeneralName[] = [
      ...uris.map((value): x509.JsonGeneralName => ({ type: 'url', value })),
      ...checkStrings('dnsNames', opts.dnsNames).map((value): x509.JsonGeneralName => ({
        type: 'dns',
        value,
      })),
    ];
    const commonName = opts.commonName ?? (opts.spiffeId?.slice(0, 64) || 'client');
    return this.issue(commonName, names, opts, ['clientAuth']);
  }

  /** Add a serial number to the next CRL (as returned in {@link IssuedCertificate.serialNumber}). */
  revoke(serialNumber: string): void {
    this.revoked.set(normalizeSerial(serialNumber), new Date(Date.now() - CLOCK_SKEW_MS));
  }

  /** A CRL signed by the CA listing every revoked serial, PEM (`-----BEGIN X509 CRL-----`). */
  async crlPem(opts: DevCrlOptions = {}): Promise<string> {
    checkKnownKeys('options', opts, ['nextUpdate', 'thisUpdate']);
    const now = Date.now();
    const nextUpdate = checkDate('nextUpdate', opts.nextUpdate) ?? new Date(now + 30 * DAY);
    const thisUpdate =
      checkDate('thisUpdate', opts.thisUpdate) ??
      new Date(Math.min(now - CLOCK_SKEW_MS, nextUpdate.getTime() - DAY));
    // RFC 5280 §5.2.3: a monotonically increasing CRL number; seconds since the epoch stay
    // increasing across processes that load the same CA.
    this.lastCrlNumber = Math.max(this.lastCrlNumber + 1, Math.floor(now / 1000));
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.cert.subjectName,
      thisUpdate,
      nextUpdate,
      signingKey: this.signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      entries: [...this.revoked].map(([serialNumber, revocationDate]) => ({
        serialNumber,
        revocationDate,
        reason: x509.X509CrlReason.keyCompromise,
      })),
      extensions: [
        new x509.AuthorityKeyIdentifierExtension(this.keyId),
        new x509.Extension('2.5.29.20', false, derInteger(this.lastCrlNumber)),
      ],
    });
    // RFC 7468 §5: the label is "X509 CRL"; OpenSSL (and so Node's `crl` option) reads no other.
    return x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n';
  }

  private async issue(
    commonName: string,
    names: x509.JsonGeneralName[],
    opts: DevLeafOptions,
    defaultEku: DevExtendedKeyUsage[],
  ): Promise<IssuedCertificate> {
    const eku = opts.extendedKeyUsage ?? defaultEku;
    if (!Array.isArray(eku) || eku.some((u) => !Object.hasOwn(EKU_OIDS, u))) {
      throw new TypeError('"extendedKeyUsage" must be an array of "serverAuth" | "clientAuth"');
    }
    const { notBefore, notAfter } = validity(opts, DEFAULT_LEAF_DAYS);
    const keys = (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // ECDSA leaves only sign (ECDHE handshakes); RFC 5280 §4.2.1.3.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.AuthorityKeyIdentifierExtension(this.keyId),
    ];
    if (eku.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(eku.map((u) => EKU_OIDS[u])));
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
    const serialNumber = randomSerial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject: subject(commonName),
      issuer: this.cert.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions,
    });
    const certPem = cert.toString('pem') + '\n';
    return Object.freeze({
      certPem,
      keyPem: pemOfKey(keys.privateKey),
      chainPem: certPem + this.certPem,
      serialNumber,
      fingerprint256: certificateFingerprint(Buffer.from(cert.rawData)),
    });
  }
}

/** DER INTEGER of a non-negative safe integer. */
function derInteger(value: number): ArrayBuffer {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = '0' + hex;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = '00' + hex;
  const body = Buffer.from(hex, 'hex');
  const der = Buffer.concat([Buffer.from([0x02, body.length]), body]);
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
}
