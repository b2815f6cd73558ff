import { X509Certificate } from 'node:crypto';
import type { LoadedTlsBundle } from '@inference-shield/core/internal';

/** Subject and end of one certificate in use. */
export interface CertificateValidity {
  readonly subject: string;
  readonly validTo: Date;
}

/** The dates of the TLS material an HTTPS app serves with and trusts (for health checks). */
export interface TlsValidity {
  readonly server: CertificateValidity;
  /** Each CA certificate trusted for client certificates (mTLS), from the file or PEM in use. */
  readonly clientCas: readonly CertificateValidity[];
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

function oneLine(dn: string): string {
  return dn.replace(/\n/g, ', ');
}
