/**
 * The IdP's TLS material from the dev PKI folder, created on first use. Loaded and checked at
 * start-up (`loadTlsBundle`): a missing, expired or mismatched certificate stops the IdP with a
 * message naming the file, rather than failing the first handshake.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadTlsBundle } from '@inference-shield/core/internal';
import { initDevPki } from '@inference-shield/dev-pki';

/** Certificate, key and CA the IdP serves with. */
export interface DevIdpTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  readonly caPem: string;
  /** The CA's CRL, when the folder has one (`ca.crl.pem`). */
  readonly crl?: readonly string[];
}

/** Load `localhost.pem`, `localhost-key.pem`, `ca.pem` and `ca.crl.pem` (if present) from `pkiDir`, creating the dev PKI if it is not there. */
export async function loadDevIdpTls(pkiDir: string): Promise<DevIdpTls> {
  let files = {
    cert: join(pkiDir, 'localhost.pem'),
    key: join(pkiDir, 'localhost-key.pem'),
    ca: join(pkiDir, 'ca.pem'),
  };
  if (!existsSync(files.ca)) {
    const layout = await initDevPki({ dir: pkiDir });
    files = { cert: layout.serverCert, key: layout.serverKey, ca: layout.caCert };
  }
  // With the CA's CRL, a revoked client certificate is not `authorized`, so it cannot
  // authenticate a tls_client_auth client (RFC 8705 2.1 leaves revocation to the PKI).
  const crl = join(pkiDir, 'ca.crl.pem');
  const bundle = loadTlsBundle(existsSync(crl) ? { ...files, crl } : files, { usage: 'server' });
  const ca = bundle.ca;
  // The loader sets `ca` whenever a CA file is given, as it is here.
  if (ca === undefined) throw new Error(`dev IdP: no client CA loaded from ${files.ca}`);
  return {
    cert: bundle.cert,
    key: bundle.key,
    ca,
    caPem: ca.toString('utf8'),
    // Every CRL of the file, each checked by the loader (Node reads only the first of a PEM string).
    ...(bundle.crls && bundle.crls.length > 0 ? { crl: [...bundle.crls] } : {}),
  };
}
