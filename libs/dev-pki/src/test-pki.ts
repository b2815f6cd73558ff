import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DevCertificateAuthority, type IssuedCertificate } from './dev-certificate-authority.js';

/** The SPIFFE trust domain of every test certificate. */
export const TEST_TRUST_DOMAIN = 'shield.local';
/** The SPIFFE ID of {@link TestPki.client} (and, deliberately, of `otherCa.client` too). */
export const TEST_CLIENT_SPIFFE_ID = 'spiffe://shield.local/test-client';

/** A certificate of the test PKI: its PEMs, and the paths of the files written for it. */
export interface TestPkiPair extends IssuedCertificate {
  /** Path of the leaf certificate (`<name>.pem`). */
  readonly cert: string;
  /** Path of the private key (`<name>-key.pem`, mode 0600). */
  readonly key: string;
  /** Path of leaf + CA (`<name>-chain.pem`). */
  readonly chain: string;
}

/** A client certificate of the test PKI. */
export interface TestPkiClient extends TestPkiPair {
  /** The SPIFFE ID in its URI SAN (undefined for `noSpiffe`). */
  readonly spiffeId: string | undefined;
}

/** A CA of the test PKI. */
export interface TestPkiAuthority {
  /** Path of the CA certificate. */
  readonly cert: string;
  /** Path of the CA key. */
  readonly key: string;
  /** Path of the CA's CRL. */
  readonly crl: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly crlPem: string;
  /** Issue more certificates from the same CA. */
  readonly authority: DevCertificateAuthority;
}

/**
 * Good and bad certificates for tests, written to one folder. Everything except `otherCa` is issued
 * by `ca`, whose CRL (`ca.crl`) lists `revoked.client`. Default validity: a minute ago to 90 days.
 */
export interface TestPki {
  /** Absolute path of the folder. */
  readonly dir: string;
  /** The test CA. Its CRL (`ca.crl.pem`) revokes `revoked.client` only. */
  readonly ca: TestPkiAuthority;
  /** Valid server certificate for localhost, 127.0.0.1 and ::1 (EKU serverAuth). */
  readonly server: TestPkiPair;
  /** Valid client certificate, SPIFFE ID {@link TEST_CLIENT_SPIFFE_ID} (EKU clientAuth). */
  readonly client: TestPkiClient;
  /** Expired yesterday (valid from 30 days ago). */
  readonly expired: { readonly server: TestPkiPair; readonly client: TestPkiClient };
  /** Valid from tomorrow. */
  readonly notYetValid: { readonly server: TestPkiPair; readonly client: TestPkiClient };
  /** Server certificate with only clientAuth; client certificate with only serverAuth. */
  readonly wrongEku: { readonly server: TestPkiPair; readonly client: TestPkiClient };
  /** A second, unrelated CA with its own server and client (same SPIFFE ID as `client`). */
  readonly otherCa: {
    readonly ca: TestPkiAuthority;
    readonly server: TestPkiPair;
    readonly client: TestPkiClient;
  };
  /** A client certificate listed in `ca.crl`. */
  readonly revoked: { readonly client: TestPkiClient };
  /** `server`-like certificate paired with the key of another certificate. */
  readonly mismatchedKey: { readonly server: TestPkiPair };
  /** Valid server certificate for `other.example` only (hostname mismatch for localhost). */
  readonly wrongHost: { readonly server: TestPkiPair };
  /** Client certificates with odd identities, all otherwise valid. */
  readonly identities: {
    /** No URI SAN at all. */
    readonly noSpiffe: TestPkiClient;
    /** Two SPIFFE URI SANs (X509-SVID says exactly one: no identity). */
    readonly twoSpiffe: TestPkiClient;
    /** A URI SAN that is not a valid SPIFFE ID (uppercase trust domain). */
    readonly invalidSpiffe: TestPkiClient;
    /** A SPIFFE ID of another trust domain (`spiffe://other.example/test-client`). */
    readonly otherTrustDomain: TestPkiClient;
  };
}

const DAY = 24 * 60 * 60 * 1000;

function writeKey(path: string, pem: string): void {
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600);
}

function writePair(dir: string, name: string, issued: IssuedCertificate): TestPkiPair {
  const pair = {
    ...issued,
    cert: join(dir, `${name}.pem`),
    key: join(dir, `${name}-key.pem`),
    chain: join(dir, `${name}-chain.pem`),
  };
  writeFileSync(pair.cert, issued.certPem);
  writeKey(pair.key, issued.keyPem);
  writeFileSync(pair.chain, issued.chainPem);
  return Object.freeze(pair);
}

function writeClient(
  dir: string,
  name: string,
  issued: IssuedCertificate,
  spiffeId: string | undefined,
): TestPkiClient {
  return Object.freeze({ ...writePair(dir, name, issued), spiffeId });
}

async function writeAuthority(
  dir: string,
  name: string,
  authority: DevCertificateAuthority,
): Promise<TestPkiAuthority> {
  const crlPem = await authority.crlPem();
  const ca = {
    cert: join(dir, `${name}.pem`),
    key: join(dir, `${name}-key.pem`),
    crl: join(dir, `${name}.crl.pem`),
    certPem: authority.certPem,
    keyPem: authority.keyPem,
    crlPem,
    authority,
  };
  writeFileSync(ca.cert, ca.certPem);
  writeKey(ca.key, ca.keyPem);
  writeFileSync(ca.crl, crlPem);
  return Object.freeze(ca);
}

/**
 * Write a complete set of good and bad certificates to `dir` (created if needed) for tests: see
 * {@link TestPki} for what each is. Two CAs, about twenty certificates, in well under a second.
 * Call it in `beforeAll` with a fresh temp folder.
 *
 * @example
 * const pki = await createTestPki(mkdtempSync(join(tmpdir(), 'pki-')));
 * tls.createServer({ cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.ca.certPem, crl: pki.ca.crlPem, requestCert: true });
 */
export async function createTestPki(dir: string): Promise<TestPki> {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  const now = Date.now();
  const expired = { notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) };
  const future = { notBefore: new Date(now + DAY), notAfter: new Date(now + 30 * DAY) };
  const id = (name: string): string => `spiffe://${TEST_TRUST_DOMAIN}/${name}`;

  const [ca, other] = await Promise.all([
    DevCertificateAuthority.create({ commonName: 'Shield Test CA' }),
    DevCertificateAuthority.create({ commonName: 'Shield Other Test CA' }),
  ]);
  const [
    server,
    client,
    expiredServer,
    expiredClient,
    futureServer,
    futureClient,
    ekuServer,
    ekuClient,
    otherServer,
    otherClient,
    revokedClient,
    keyDonor,
    wrongHost,
    noSpiffe,
    twoSpiffe,
    invalidSpiffe,
    otherTrustDomain,
  ] = await Promise.all([
    ca.issueServer(),
    ca.issueClient({ spiffeId: TEST_CLIENT_SPIFFE_ID, commonName: 'test-client' }),
    ca.issueServer({ ...expired }),
    ca.issueClient({ spiffeId: id('expired-client'), ...expired }),
    ca.issueServer({ ...future }),
    ca.issueClient({ spiffeId: id('not-yet-valid-client'), ...future }),
    ca.issueServer({ extendedKeyUsage: ['clientAuth'] }),
    ca.issueClient({ spiffeId: id('wrong-eku-client'), extendedKeyUsage: ['serverAuth'] }),
    other.issueServer(),
    other.issueClient({ spiffeId: TEST_CLIENT_SPIFFE_ID, commonName: 'test-client' }),
    ca.issueClient({ spiffeId: id('revoked-client'), commonName: 'revoked-client' }),
    ca.issueServer(),
    ca.issueServer({ hosts: ['other.example'] }),
    ca.issueClient({ commonName: 'no-spiffe-client' }),
    ca.issueClient({ spiffeId: id('first'), uris: [id('second')], commonName: 'two-spiffe-client' }),
    ca.issueClient({ uris: ['spiffe://Shield.Local/test-client'], commonName: 'invalid-spiffe-client' }),
    ca.issueClient({ spiffeId: 'spiffe://other.example/test-client', commonName: 'other-td-client' }),
  ]);
  ca.revoke(revokedClient.serialNumber);

  const mismatched: IssuedCertificate = { ...server, keyPem: keyDonor.keyPem };
  const [caFiles, otherFiles] = await Promise.all([
    writeAuthority(abs, 'ca', ca),
    writeAuthority(abs, 'other-ca', other),
  ]);

  return Object.freeze({
    dir: abs,
    ca: caFiles,
    server: writePair(abs, 'server', server),
    client: writeClient(abs, 'client', client, TEST_CLIENT_SPIFFE_ID),
    expired: Object.freeze({
      server: writePair(abs, 'expired-server', expiredServer),
      client: writeClient(abs, 'expired-client', expiredClient, id('expired-client')),
    }),
    notYetValid: Object.freeze({
      server: writePair(abs, 'not-yet-valid-server', futureServer),
      client: writeClient(abs, 'not-yet-valid-client', futureClient, id('not-yet-valid-client')),
    }),
    wrongEku: Object.freeze({
      server: writePair(abs, 'wrong-eku-server', ekuServer),
      client: writeClient(abs, 'wrong-eku-client', ekuClient, id('wrong-eku-client')),
    }),
    otherCa: Object.freeze({
      ca: otherFiles,
      server: writePair(abs, 'other-ca-server', otherServer),
      client: writeClient(abs, 'other-ca-client', otherClient, TEST_CLIENT_SPIFFE_ID),
    }),
    revoked: Object.freeze({
      client: writeClient(abs, 'revoked-client', revokedClient, id('revoked-client')),
    }),
    mismatchedKey: Object.freeze({ server: writePair(abs, 'mismatched-key-server', mismatched) }),
    wrongHost: Object.freeze({ server: writePair(abs, 'wrong-host-server', wrongHost) }),
    identities: Object.freeze({
      noSpiffe: writeClient(abs, 'no-spiffe-client', noSpiffe, undefined),
      twoSpiffe: writeClient(abs, 'two-spiffe-client', twoSpiffe, undefined),
      invalidSpiffe: writeClient(abs, 'invalid-spiffe-client', invalidSpiffe, undefined),
      otherTrustDomain: writeClient(
        abs,
        'other-trust-domain-client',
        otherTrustDomain,
        'spiffe://other.example/test-client',
      ),
    }),
  });
}
