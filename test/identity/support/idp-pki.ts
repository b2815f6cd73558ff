/**
 * One CA for the whole scenario: the dev IdP's server certificate, the fixture app's server
 * certificate and the client certificates all come from `createTestPki`'s CA, so a certificate the
 * IdP binds a token to (RFC 8705) is one the fixture app verifies in the handshake.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, type IssuedCertificate, type TestPki } from '@inference-shield/dev-pki';

/** The SPIFFE ID `demo-workload-mtls` must present at the IdP (apps/dev-idp/clients.json). */
export const DEMO_WORKLOAD_SPIFFE_ID = 'spiffe://shield.local/demo';

/** A test PKI plus the folder layout the dev IdP reads (`ca.pem`, `localhost.pem`, `localhost-key.pem`). */
export interface SharedPki {
  readonly pki: TestPki;
  /** Pass as `startDevIdp({ pkiDir })`. */
  readonly idpPkiDir: string;
  /** Client certificate of `demo-workload-mtls` (`spiffe://shield.local/demo`), same CA. */
  readonly demo: IssuedCertificate;
}

/** Creates the PKI under `root` (a fresh temp folder). */
export async function createSharedPki(root: string): Promise<SharedPki> {
  const pki = await createTestPki(join(root, 'pki'));
  const idpPkiDir = join(root, 'idp-pki');
  mkdirSync(idpPkiDir, { recursive: true, mode: 0o700 });
  // The IdP loads an existing folder as it is (it only creates one when `ca.pem` is missing).
  writeFileSync(join(idpPkiDir, 'ca.pem'), pki.ca.certPem);
  writeFileSync(join(idpPkiDir, 'ca.crl.pem'), pki.ca.crlPem);
  writeFileSync(join(idpPkiDir, 'localhost.pem'), pki.server.certPem);
  writeFileSync(join(idpPkiDir, 'localhost-key.pem'), pki.server.keyPem, { mode: 0o600 });
  const demo = await pki.ca.authority.issueClient({ spiffeId: DEMO_WORKLOAD_SPIFFE_ID, commonName: 'demo' });
  return { pki, idpPkiDir, demo };
}
