import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPki, TestPkiClient } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { PeerAppModule, type PeerAnswer } from './fixtures/peer.app.js';
import { call, testPki } from '../support/harness.js';
import { handshake } from './support/clients.js';

type ClientPick = (pki: TestPki) => TestPkiClient | undefined;

const REFUSED: [string, ClientPick][] = [
  ['no client certificate', () => undefined],
  ['a certificate from another CA', (p) => p.otherCa.client],
  ['an expired certificate', (p) => p.expired.client],
  ['a certificate not yet valid', (p) => p.notYetValid.client],
  ['a certificate without clientAuth (wrong EKU)', (p) => p.wrongEku.client],
  ['a revoked certificate (CRL)', (p) => p.revoked.client],
];

const REFUSAL_CODES = [
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  // The same TLS 1.2 handshake_failure alert, as OpenSSL 3.2+ (Node 24, 26) names it.
  'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE',
  'CLOSED',
  'ECONNRESET',
];

function credentials(client: TestPkiClient | undefined): { cert?: string; key?: string } {
  return client === undefined ? {} : { cert: client.certPem, key: client.keyPem };
}

/** The same client certificate, as the harness's `call` takes it. */
function presenting(client: TestPkiClient | undefined): { client?: TestPkiClient } {
  return client === undefined ? {} : { client };
}

describe('inbound mTLS', () => {
  let pki: TestPki;
  let required: HttpsApp;
  let optional: HttpsApp;
  let requiredPort: number;
  let optionalPort: number;

  beforeAll(async () => {
    pki = await testPki('mtls');
    const tls = { cert: pki.server.cert, key: pki.server.key };
    required = await createHttpsApp(PeerAppModule, {
      tls,
      mtls: { mode: 'required', ca: { file: pki.ca.cert }, crl: pki.ca.crl },
      nest: { logger: false },
    });
    optional = await createHttpsApp(PeerAppModule, {
      tls,
      mtls: { mode: 'optional', ca: { file: pki.ca.cert }, crl: pki.ca.crl },
      nest: { logger: false },
    });
    requiredPort = (await required.listen(0, '127.0.0.1')).port;
    optionalPort = (await optional.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    await Promise.all([required?.close(), optional?.close()]);
  });

  describe('mode "required"', () => {
    it.each(REFUSED)('refuses %s at the handshake (TLS 1.3 and 1.2)', async (_name, pick) => {
      for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
        const r = await handshake(requiredPort, {
          ca: pki.ca.certPem,
          maxVersion: version,
          ...credentials(pick(pki)),
        });
        expect(r.ok, `${version}: ${r.code}`).toBe(false);
        // The server alerts (no certificate) or drops the connection right after verifying the
        // chain (Node's rejectUnauthorized): either way no request byte is ever answered.
        expect(REFUSAL_CODES).toContain(r.code);
      }
    });

    it('accepts a valid client certificate and hands the verified certificate to the route', async () => {
      const r = await call(requiredPort, {
        ca: pki.ca.certPem,
        path: '/peer',
        ...presenting(pki.client),
      });
      expect(r.status).toBe(200);
      const peer = JSON.parse(r.text) as PeerAnswer;
      expect(peer).toMatchObject({
        verified: true,
        subjectCN: 'test-client',
        fingerprint256: pki.client.fingerprint256,
      });
      expect(peer.subjectAltName).toContain('URI:spiffe://shield.local/test-client');
    });

    it('accepts it over TLS 1.2 too', async () => {
      const r = await handshake(requiredPort, {
        ca: pki.ca.certPem,
        maxVersion: 'TLSv1.2',
        ...credentials(pki.client),
      });
      expect(r).toMatchObject({ ok: true, protocol: 'TLSv1.2' });
    });
  });

  describe('mode "optional"', () => {
    it('lets a client without a certificate in; the route sees no identity', async () => {
      const r = await call(optionalPort, { ca: pki.ca.certPem, path: '/peer' });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.text)).toMatchObject({ verified: false });
    });

    it.each([
      ['another CA', (p: TestPki) => p.otherCa.client, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['an expired certificate', (p: TestPki) => p.expired.client, 'CERT_HAS_EXPIRED'],
      ['a certificate not yet valid', (p: TestPki) => p.notYetValid.client, 'CERT_NOT_YET_VALID'],
      ['a certificate without clientAuth', (p: TestPki) => p.wrongEku.client, 'INVALID_PURPOSE'],
      ['a revoked certificate', (p: TestPki) => p.revoked.client, 'CERT_REVOKED'],
    ])('never turns an unverified certificate (%s) into an identity', async (_name, pick, reason) => {
      const r = await call(optionalPort, {
        ca: pki.ca.certPem,
        path: '/peer',
        ...presenting(pick(pki)),
      });
      expect(r.status).toBe(200);
      // The reason OpenSSL gave: the same check that refuses these at the handshake in "required" mode.
      expect(JSON.parse(r.text)).toEqual({ verified: false, authorizationError: reason });
    });

    it('reports a verified certificate', async () => {
      const r = await call(optionalPort, {
        ca: pki.ca.certPem,
        path: '/peer',
        ...presenting(pki.client),
      });
      expect(JSON.parse(r.text)).toMatchObject({ verified: true, fingerprint256: pki.client.fingerprint256 });
    });

    it('ignores a client certificate sent in a header', async () => {
      const r = await call(optionalPort, {
        ca: pki.ca.certPem,
        path: '/peer',
        headers: {
          'X-Client-Cert': encodeURIComponent(pki.client.certPem),
          'X-SSL-Client-Verify': 'SUCCESS',
          'X-Forwarded-Client-Cert': `Hash=${pki.client.fingerprint256}`,
        },
      });
      expect(JSON.parse(r.text)).toMatchObject({ verified: false });
      expect(r.text).not.toContain(pki.client.fingerprint256);
    });
  });

  describe('a client CA given as PEM text ({ pem })', () => {
    let fromPem: HttpsApp;
    let port: number;

    beforeAll(async () => {
      fromPem = await createHttpsApp(PeerAppModule, {
        tls: { cert: pki.server.cert, key: pki.server.key },
        mtls: { mode: 'required', ca: { pem: Buffer.from(pki.ca.certPem) } },
        nest: { logger: false },
      });
      port = (await fromPem.listen(0, '127.0.0.1')).port;
    });

    afterAll(async () => {
      await fromPem?.close();
    });

    it('verifies client certificates against it, as with a CA file', async () => {
      const r = await call(port, { ca: pki.ca.certPem, path: '/peer', ...presenting(pki.client) });
      expect(JSON.parse(r.text)).toMatchObject({ verified: true, fingerprint256: pki.client.fingerprint256 });
      for (const pick of [() => undefined, (p: TestPki) => p.otherCa.client] as ClientPick[]) {
        const refused = await handshake(port, { ca: pki.ca.certPem, ...credentials(pick(pki)) });
        expect(refused.ok).toBe(false);
      }
    });

    it('is not among the watched files, and a reload keeps it in use', async () => {
      expect(fromPem.reload()).toBe(true);
      expect(fromPem.certificate().files).toEqual({ cert: pki.server.cert, key: pki.server.key });
      const r = await call(port, { ca: pki.ca.certPem, path: '/peer', ...presenting(pki.client) });
      expect(JSON.parse(r.text)).toMatchObject({ verified: true });
    });
  });
});
