import { X509Certificate } from 'node:crypto';
import { basename } from 'node:path';
import { certificateExpiries, type LoadedTlsBundle } from '@inference-shield/core/internal';

/** Subject and end of one certificate in use. */
export interface CertificateValidity {
  readonly subject: string;
  readonly validTo: Date;
}

/** One CRL in use: the file it came from, its SHA-256, and its `nextUpdate`. */
export interface CrlValidity {
  /** Base name of the CRL file (`mtls.crl`), not its path. */
  readonly file: string;
  /** SHA-256 of the CRL's DER, lowercase hex (as in the `shield.certificate.expiry` metric). */
  readonly fingerprint: string;
  /** `nextUpdate`: past it, OpenSSL refuses every client certificate of that CA. */
  readonly nextUpdate: Date;
}

/** The dates of the TLS material an HTTPS app serves with and trusts (for health checks). */
export interface TlsValidity {
  readonly server: CertificateValidity;
  /** Each CA certificate trusted for client certificates (mTLS), from the file or PEM in use. */
  readonly clientCas: readonly CertificateValidity[];
  /** Each CRL in use (`mtls.crl`) that has a `nextUpdate`; empty without one. */
  readonly crls?: readonly CrlValidity[];
}

// Parsed once per bundle (a reload brings a new bundle object): nothing is parsed per health call.
const byBundle = new WeakMap<LoadedTlsBundle, TlsValidity>();

/** The validity of a bundle's server leaf and of the client CAs in use with it. */
export function tlsValidityOf(bundle: LoadedTlsBundle, staticCa: Buffer | undefined): TlsValidity {
  let validity = byBundle.get(bundle);
  if (validity === undefined) {
    const ca = bundle.ca ?? staticCa;
    validity = Object.freeze({
      server: Object.freeze({ subject: oneLine(bundle.leaf.subject), validTo: bundle.notAfter }),
      clientCas: Object.freeze(ca === undefined ? [] : certificatesOfPem(ca)),
      crls: Object.freeze(crlsOf(bundle)),
    });
    byBundle.set(bundle, validity);
  }
  return validity;
}

function certificatesOfPem(pem: Buffer): CertificateValidity[] {
  const blocks =
    pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: CertificateValidity[] = [];
  for (const block of blocks) {
    try {
      const cert = new X509Certificate(block);
      out.push(Object.freeze({ subject: oneLine(cert.subject), validTo: new Date(cert.validTo) }));
    } catch {
      // The CA in use was checked when it was loaded; what cannot be read here is not reported.
    }
  }
  return out;
}

/**
 * The CRLs of the bundle, as the expiry metric reads them (https.telemetry.ts): the same material
 * and file, so the parse is shared (core caches it per object) and the metric's file is unchanged.
 */
function crlsOf(bundle: LoadedTlsBundle): CrlValidity[] {
  if (bundle.crls === undefined) return [];
  return certificateExpiries([{ role: 'crl', file: bundle.files.crl ?? 'mtls.crl', pem: bundle.crls }]).map(
    (e) =>
      Object.freeze({ file: basename(e.file), fingerprint: e.fingerprint, nextUpdate: new Date(e.endsAt) }),
  );
}

function oneLine(dn: string): string {
  return dn.replace(/\n/g, ', ');
}
