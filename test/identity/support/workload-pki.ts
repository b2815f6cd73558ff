/**
 * The workloads of the identity end-to-end specs: a test PKI (served by the harness) plus client
 * certificates with SPIFFE IDs in and out of the shield.local trust domain, one without a SPIFFE
 * ID, and one from a CA the server does not trust.
 */
import { DevCertificateAuthority, type IssuedCertificate, type TestPki } from '@inference-shield/dev-pki';
import { testPki, type StartOptions } from '../../support/harness.js';

export const GW_ID = 'spiffe://shield.local/ns/prod/gw';
export const OTHER_ID = 'spiffe://shield.local/ns/prod/other';
export const PARTNER_ID = 'spiffe://partners.example/ns/x';

export interface Pki {
  /** The test PKI: pass as `startApp(module, { pki: pki.test, mtls: 'optional' })`. */
  readonly test: TestPki;
  readonly caPem: string;
  /** spiffe://shield.local/ns/prod/gw */
  readonly gw: IssuedCertificate;
  /** spiffe://shield.local/ns/prod/other */
  readonly other: IssuedCertificate;
  /** spiffe://partners.example/ns/x (same CA, another trust domain) */
  readonly partner: IssuedCertificate;
  /** No SPIFFE ID; CN "worker", DNS SAN worker.internal */
  readonly plain: IssuedCertificate;
  /** spiffe://shield.local/ns/prod/gw, but issued by a CA the server does not trust */
  readonly foreign: IssuedCertificate;
}

export async function createPki(): Promise<Pki> {
  const test = await testPki('identity');
  const ca = test.ca.authority;
  const rogue = await DevCertificateAuthority.create({ commonName: 'Rogue CA' });
  return {
    test,
    caPem: test.ca.certPem,
    gw: await ca.issueClient({ spiffeId: GW_ID }),
    other: await ca.issueClient({ spiffeId: OTHER_ID }),
    partner: await ca.issueClient({ spiffeId: PARTNER_ID }),
    plain: await ca.issueClient({ commonName: 'worker', dnsNames: ['worker.internal'] }),
    foreign: await rogue.issueClient({ spiffeId: GW_ID }),
  };
}

/**
 * How the identity specs serve: optional mTLS trusting the test CA (a client certificate is asked
 * for, a connection without one still reaches the guard, so routes can mix token and workload
 * callers), TLS 1.3 only.
 */
export function optionalMtls(pki: Pki): StartOptions {
  return { pki: pki.test, mtls: 'optional', tls: { minVersion: 'TLSv1.3' } };
}
