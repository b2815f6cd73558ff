import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isShieldError, loadTlsBundle } from '@inference-shield/core/internal';
import { DevCertificateAuthority, type IssuedCertificate, type TestPki } from '@inference-shield/dev-pki';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import { testPki } from '../../support/harness.js';
import { handshake } from '../../https/support/clients.js';
import { AttackAppModule } from './attack.app.js';

const HOUR = 3600_000;

/** Start a required-mTLS app on loopback with these CA and CRL files; no file watching. */
async function mtlsApp(pki: TestPki, ca: string, crl: string): Promise<{ app: HttpsApp; port: number }> {
  const app = await createHttpsApp(AttackAppModule, {
    tls: { cert: pki.server.cert, key: pki.server.key },
    mtls: { mode: 'required', ca: { file: ca }, crl },
    reload: { watch: false, sighup: false },
    nest: { logger: false },
  });
  return { app, port: (await app.listen(0, '127.0.0.1')).port };
}

/** Does a full request succeed with this client certificate, over TLS 1.3 and over TLS 1.2? */
async function accepted(port: number, caPem: string, client: IssuedCertificate): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    const r = await handshake(port, { ca: caPem, cert: client.certPem, key: client.keyPem, maxVersion });
    out.push(r.ok && r.authorized === true);
  }
  return out;
}

describe('CRL files with several CRLs, and CRL encodings (inbound mTLS)', () => {
  let pki: TestPki;
  const apps: HttpsApp[] = [];

  beforeAll(async () => {
    pki = await testPki('crl-attack');
  });

  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
  });

  // Node's `crl` option loads only the first CRL of a PEM string, while the loader checked every
  // CRL of the file. An operator appending the new CRL to the file (or a CA publishing a bundle)
  // got a revocation that the server silently ignored: the revoked client was let in.
  it('enforces a revocation listed only in the second (newer) CRL of the file', async () => {
    const authority = pki.ca.authority;
    const victim = await authority.issueClient({ spiffeId: 'spiffe://shield.local/victim' });
    const older = await authority.crlPem({ thisUpdate: new Date(Date.now() - 2 * HOUR) });
    authority.revoke(victim.serialNumber);
    const newer = await authority.crlPem();
    const crl = join(pki.dir, 'old-then-new.crl.pem');
    writeFileSync(crl, older + newer);

    const { app, port } = await mtlsApp(pki, pki.ca.cert, crl);
    apps.push(app);
    expect(await accepted(port, pki.ca.certPem, victim)).toEqual([false, false]);
    expect(await accepted(port, pki.ca.certPem, pki.client)).toEqual([true, true]);
  });

  // Same root cause, the other way: with two trusted CAs and one CRL each in the file, OpenSSL
  // (CRL_CHECK_ALL) had no CRL for the second CA and refused every one of its clients.
  it('uses the CRL of each CA when the CA file trusts two CAs', async () => {
    const ca = join(pki.dir, 'two-cas.pem');
    const crl = join(pki.dir, 'two-cas.crl.pem');
    writeFileSync(ca, pki.otherCa.ca.certPem + pki.ca.certPem);
    writeFileSync(crl, pki.otherCa.ca.crlPem + pki.ca.crlPem);

    const { app, port } = await mtlsApp(pki, ca, crl);
    apps.push(app);
    const caPem = pki.ca.certPem;
    expect(await accepted(port, caPem, pki.otherCa.client)).toEqual([true, true]);
    expect(await accepted(port, caPem, pki.client)).toEqual([true, true]);
    expect(await accepted(port, caPem, pki.revoked.client)).toEqual([false, false]);
  });

  // The loader re-encoded each CRL as PEM with a newline after every 64th base64 character: when
  // the base64 length is a multiple of 64 (DER length 46..48 mod 48, one CRL in sixteen) that left
  // an empty line before END, OpenSSL refused it and so did the loader: a valid new CRL, with its
  // revocations, was refused at start-up and on rotation ("CRL #1 cannot be parsed").
  it('accepts a valid CRL whose base64 length is a multiple of 64, and enforces it', async () => {
    const authority = await DevCertificateAuthority.create({ commonName: 'Shield CRL Length CA' });
    const [good, bad] = await Promise.all([
      authority.issueClient({ spiffeId: 'spiffe://shield.local/good' }),
      authority.issueClient({ spiffeId: 'spiffe://shield.local/bad' }),
    ]);
    authority.revoke(bad.serialNumber);
    let crlPem = '';
    // Each revoked serial adds about 40 bytes; ECDSA signatures vary by a byte or two. Bounded.
    for (let i = 1; i <= 400; i++) {
      const candidate = await authority.crlPem();
      const body = candidate.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      if (body.length % 64 === 0) {
        crlPem = candidate;
        break;
      }
      if (i % 4 === 0) authority.revoke(i.toString(16).padStart(4, '0'));
    }
    expect(crlPem).not.toBe('');
    const ca = join(pki.dir, 'len-ca.pem');
    const crl = join(pki.dir, 'len-ca.crl.pem');
    writeFileSync(ca, authority.certPem);
    writeFileSync(crl, crlPem);

    let refusal: string | undefined;
    try {
      loadTlsBundle({ cert: pki.server.cert, key: pki.server.key, ca, crl }, { usage: 'server' });
    } catch (err) {
      refusal = isShieldError(err) ? `${err.code}: ${err.message}` : String(err);
    }
    expect(refusal).toBeUndefined();

    const { app, port } = await mtlsApp(pki, ca, crl);
    apps.push(app);
    const caPem = pki.ca.certPem;
    expect(await accepted(port, caPem, good)).toEqual([true, true]);
    expect(await accepted(port, caPem, bad)).toEqual([false, false]);
  });
});

/** Connect with a client certificate, optionally resuming `session`; report the outcome. */
function resumable(
  port: number,
  tls: ConnectionOptions,
): Promise<{ ok: boolean; reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...tls });
    let session: Buffer | undefined;
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const reused = socket.isSessionReused();
      socket.destroy();
      resolve({ ok, reused, session });
    };
    const timer = setTimeout(() => done(false), 5000);
    socket.on('session', (s: Buffer) => (session = s));
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
    socket.on('secureConnect', () => {
      socket.write('GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n');
      // Wait a moment after the answer: TLS 1.3 tickets arrive after the handshake.
      socket.once('data', () => setTimeout(() => done(true), 100));
    });
  });
}

describe('session resumption across a CRL reload (THREATS: revoked client certificate)', () => {
  let pki: TestPki;
  let app: HttpsApp;
  let port: number;
  let crl: string;

  beforeAll(async () => {
    pki = await testPki('crl-resume');
    crl = join(pki.dir, 'live.crl.pem');
    writeFileSync(crl, pki.ca.crlPem);
    ({ app, port } = await mtlsApp(pki, pki.ca.cert, crl));
  });

  afterAll(async () => {
    await app?.close();
  });

  // README: "each reload builds a new TLS context with new session-ticket keys": a client revoked
  // after start must not get back in by resuming a session (TLS 1.3 ticket or TLS 1.2 ticket).
  it.each(['TLSv1.3', 'TLSv1.2'] as const)('refuses a %s resumption by a client revoked since', async (v) => {
    const client = await pki.ca.authority.issueClient({ spiffeId: `spiffe://shield.local/resume-${v}` });
    const tls = {
      ca: pki.ca.certPem,
      cert: client.certPem,
      key: client.keyPem,
      maxVersion: v,
      minVersion: v,
    };
    const first = await resumable(port, tls);
    expect(first.ok).toBe(true);
    expect(first.session).toBeDefined();
    // Control: before any reload, the session does resume (so the refusal below is not vacuous).
    const again = await resumable(port, { ...tls, session: first.session });
    expect(again).toMatchObject({ ok: true, reused: true });

    pki.ca.authority.revoke(client.serialNumber);
    writeFileSync(crl, await pki.ca.authority.crlPem());
    expect(app.reload()).toBe(true);
    const resumed = await resumable(port, { ...tls, session: first.session });
    expect(resumed.ok).toBe(false);
  });
});
