import { metrics, type Meter, type ObservableCallback } from '@opentelemetry/api';
import { certificateFingerprint } from './certificate.inspect.js';
import { parseCertificatePem } from './certificate.loader.js';
import { parseCrl } from './crl.check.js';

/** What a loaded certificate or CRL is used for (`shield.certificate.role`). */
export type CertificateRole = 'server' | 'client_ca' | 'crl' | 'upstream_client' | 'upstream_ca';

/** One certificate (or CRL) whose end of validity is observed. Never key material. */
export interface CertificateExpiry {
  readonly role: CertificateRole;
  /** The file it was read from, or the option that gave it as PEM text. */
  readonly file: string;
  /** SHA-256 of the certificate's DER (lowercase hex); for a CRL, of its DER too. */
  readonly fingerprint: string;
  /** `notAfter` of a certificate, `nextUpdate` of a CRL, in epoch ms. */
  readonly endsAt: number;
}

/** One piece of material: PEM text, the file or option it came from, and its role. */
export interface CertificateMaterial {
  readonly role: CertificateRole;
  readonly file: string;
  /** A certificate chain (only the first is observed for `server` and `upstream_client`), CAs, or CRLs. */
  readonly pem: Buffer | string | readonly string[] | undefined;
}

const SCOPE = '@inference-shield/core';
// Parsed once per material object (a reload brings new objects): nothing is parsed per collection.
const parsed = new WeakMap<object, readonly CertificateExpiry[]>();
const LEAF_ONLY: ReadonlySet<CertificateRole> = new Set(['server', 'upstream_client']);

/** The expiries of some material, parsed once per object; material that does not parse is skipped. */
export function certificateExpiries(materials: readonly CertificateMaterial[]): CertificateExpiry[] {
  const out: CertificateExpiry[] = [];
  for (const m of materials) {
    const pem = m.pem;
    if (pem === undefined) continue;
    const key = typeof pem === 'string' ? undefined : (pem as object);
    let entries = key !== undefined ? parsed.get(key) : undefined;
    if (entries === undefined) {
      entries = parse(m);
      if (key !== undefined) parsed.set(key, entries);
    }
    out.push(...entries);
  }
  return out;
}

function parse(m: CertificateMaterial): readonly CertificateExpiry[] {
  try {
    if (m.role === 'crl') {
      const pems = typeof m.pem === 'string' || Buffer.isBuffer(m.pem) ? [m.pem.toString()] : (m.pem ?? []);
      const out: CertificateExpiry[] = [];
      for (const pem of pems) {
        const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
        const next = parseCrl(der).nextUpdate;
        if (next !== undefined) {
          out.push({
            role: m.role,
            file: m.file,
            fingerprint: certificateFingerprint(der),
            endsAt: next.getTime(),
          });
        }
      }
      return Object.freeze(out);
    }
    if (typeof m.pem !== 'string' && !Buffer.isBuffer(m.pem)) return [];
    const certs = parseCertificatePem(m.pem, m.file);
    const chosen = LEAF_ONLY.has(m.role) ? certs.slice(0, 1) : certs;
    return Object.freeze(
      chosen.map((c) => ({
        role: m.role,
        file: m.file,
        fingerprint: certificateFingerprint(c),
        endsAt: new Date(c.validTo).getTime(),
      })),
    );
  } catch {
    // Material in use was checked when it was loaded; what cannot be read here is not observed.
    return [];
  }
}

/**
 * Observes `shield.certificate.expiry` (seconds until `notAfter`, or a CRL's `nextUpdate`) for what
 * `read` returns at each collection, through `@opentelemetry/api` (a no-op without an SDK).
 * Returns the function that stops it.
 */
export function observeCertificateExpiry(
  read: () => readonly CertificateExpiry[],
  meter: Meter = metrics.getMeter(SCOPE),
): () => void {
  const gauge = meter.createObservableGauge('shield.certificate.expiry', {
    description:
      'Seconds until a loaded certificate expires (CRL: until its nextUpdate), by role, file and SHA-256 fingerprint.',
    unit: 's',
  });
  const callback: ObservableCallback = (result) => {
    const now = Date.now();
    for (const e of read()) {
      result.observe((e.endsAt - now) / 1000, {
        'shield.certificate.role': e.role,
        'shield.certificate.file': e.file,
        'shield.certificate.fingerprint': e.fingerprint,
      });
    }
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}
