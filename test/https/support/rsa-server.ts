import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestPki } from '@inference-shield/dev-pki';
import { run } from './clients.js';

/**
 * An RSA server certificate from the test CA, made with the openssl CLI (the dev PKI issues ECDSA
 * only). With an RSA key, static-RSA and ECDHE-RSA-CBC suites become possible at all, so a test that
 * they are refused can actually fail.
 */
export async function issueRsaServer(pki: TestPki): Promise<{ cert: string; key: string }> {
  const key = join(pki.dir, 'rsa-server-key.pem');
  const csr = join(pki.dir, 'rsa-server.csr');
  const cert = join(pki.dir, 'rsa-server.pem');
  const ext = join(pki.dir, 'rsa-server.ext');
  writeFileSync(
    ext,
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n',
  );
  const steps: string[][] = [
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key],
    ['req', '-new', '-key', key, '-subj', '/CN=localhost', '-out', csr],
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      pki.ca.cert,
      '-CAkey',
      pki.ca.key,
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      cert,
    ],
  ];
  for (const args of steps) {
    const r = await run('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  }
  return { cert, key };
}
